"""The ``ivr call`` command: a softphone in the terminal."""

import os
import sys

import click
import requests

from ivr.config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

from .call import DEFAULT_FROM, place_call
from .caller import DEFAULT_CONFIDENCE, parse_card, parse_keys, script
from .texts import send_texts
from .transcript import Printer


def _check_keys(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        if value is not None:
            parse_keys(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_cards(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for spec in value:
        try:
            parse_card(spec)
        except ValueError as exc:
            # Never echo the spec: it holds a card number.
            raise click.BadParameter(str(exc)) from None
    return value


@click.command("call")
@click.option(
    "--url",
    # The same default port as `ivr demo`: $PORT when set, else 5000.
    default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '5000')}",
    show_default="http://127.0.0.1:$PORT (5000)",
    help="The number's Voice URL, or the server's origin (then /twilio/voice is called).",
)
@click.option(
    "--from", "from_", default=DEFAULT_FROM, show_default=True, help="Caller's number (E.164)."
)
@click.option(
    "--to",
    envvar="TWILIO_FROM_NUMBER",
    default="+15005550006",
    show_default=True,
    help="The co-op's number that is called.",
)
@click.option(
    "--keys",
    callback=_check_keys,
    help='Keys to press, one group per question, e.g. "1 12345001# 4567 1"; _ = silence.',
)
@click.option(
    "--card",
    "cards",
    multiple=True,
    callback=_check_cards,
    help="One per card entry: number,MM/YY,cvc,zip; 'a|b' in a field = first try, then retry.",
)
@click.option(
    "--say",
    "said",
    multiple=True,
    help='Words to say, one per prompt, sent as SpeechResult (e.g. --say "pay"); @ in --keys places them.',
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1),
    default=DEFAULT_CONFIDENCE,
    show_default=True,
    help="The Confidence sent with what is said (low values are read back by the service).",
)
@click.option("--hangup-in-pay", is_flag=True, help="Hang up when card entry starts (scripted mode).")
@click.option(
    "--via", multiple=True, help="Send requests round robin to these origins (a load balancer)."
)
@click.option(
    "--status-callback",
    default=None,
    help="Call status callback URL [default: {url origin}/twilio/voice/status; '' for none].",
)
@click.option(
    "--auth-token",
    envvar="TWILIO_AUTH_TOKEN",
    default=DEV_AUTH_TOKEN,
    show_default="the development token",
    help="Signs every request.",
)
@click.option(
    "--account-sid",
    envvar="TWILIO_ACCOUNT_SID",
    default=DEV_ACCOUNT_SID,
    show_default=True,
    help="The Twilio account the requests say they come from.",
)
@click.option(
    "--dial-status",
    type=click.Choice(["completed", "busy", "no-answer", "failed"]),
    default="completed",
    show_default=True,
    help="How a number the call is transferred to answers.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the transcript as JSON (live view goes to stderr).",
)
@click.option("--speak", is_flag=True, help="Read prompts aloud with espeak-ng.")
@click.option(
    "--twilio-api",
    help="The Twilio stand-in ivr demo runs: the call is live there, so the agent console can transfer it "
    "or take a card on it while you talk to the agent (key 0).",
)
@click.option(
    "--agent",
    "agent_line",
    is_flag=True,
    help="Call the co-op's agents instead of the IVR (with --twilio-api): the agent console can then transfer "
    "the call to pay or take the card on it.",
)
@click.option(
    "--answer",
    is_flag=True,
    help="Answer the call the app asked the Twilio stand-in to place (Call me now) instead of calling in.",
)
@click.option(
    "--text",
    "texts",
    multiple=True,
    help='Text this to the number instead of calling (to /twilio/sms); repeat for a conversation: --text PAY --text YES.',
)
def call_command(
    url,
    from_,
    to,
    keys,
    cards,
    said,
    confidence,
    hangup_in_pay,
    via,
    status_callback,
    auth_token,
    account_sid,
    dial_status,
    as_json,
    speak,
    twilio_api,
    agent_line,
    answer,
    texts,
) -> None:
    """Place a simulated phone call against a running server, exactly as Twilio would.

    Without --keys, --say or --card the call is interactive: type keys and Enter for each prompt
    (words are said, as speech; empty line = silence); card details are typed hidden. With --text, text the number instead
    and show its replies. Exits 1 on an application error.
    """
    live = sys.stderr if as_json else sys.stdout
    try:
        script(keys, said)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--keys/--say") from None
    if texts:
        if keys is not None or cards or hangup_in_pay or said:
            raise click.UsageError(
                "--text sends texts instead of placing a call; leave out --keys, --say, --card and --hangup-in-pay"
            )
        exchange = send_texts(url, texts, from_=from_, to=to, account_sid=account_sid, auth_token=auth_token,
                              printer=Printer(live))
        if as_json:
            click.echo(exchange.to_json())
        click.get_current_context().exit(exchange.exit_code)
    try:
        result = place_call(
            url,
            from_=from_,
            to=to,
            keys=keys,
            cards=cards,
            say=said,
            confidence=confidence,
            hangup_in_pay=hangup_in_pay,
            via=via,
            status_callback=status_callback,
            auth_token=auth_token,
            account_sid=account_sid,
            dial_status=dial_status,
            out=live,
            speak=speak,
            twilio_api=twilio_api,
            answer=answer,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except requests.RequestException:
        raise click.ClickException(f"the Twilio stand-in at {twilio_api} did not answer; is ivr demo running?") from None
    if as_json:
        click.echo(result.to_json())
    click.get_current_context().exit(result.exit_code)

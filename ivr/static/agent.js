/* Agent console: plain JavaScript, no build step. Talks to /api/agent/* with the session cookie
   and the page's CSRF token, and polls the payment's progress until it ends. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var POLL_MS = 1000;
  var FIELD_LABELS = {
    "payment-card-number": "card number",
    "expiration-date": "expiry date",
    "security-code": "security code",
    "postal-code": "ZIP code"
  };
  var INPUT_NAMES = {
    call_sid: "Call SID", account_number: "Account number", amount: "Amount",
    return_to: "Send the caller back to", field: "Field", body: "Request"
  };
  var ERROR_TYPES = {
    "input-timeout": "no digits came in time",
    "invalid-card-number": "not a valid card number",
    "invalid-card-type": "this card type is not accepted",
    "invalid-date": "not a valid expiry date",
    "invalid-security-code": "not a valid security code",
    "invalid-postal-code": "not a valid ZIP code",
    "session-in-progress": "another payment session is open on this call"
  };
  var BRANDS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover" };
  var SAVED_ON = { ivr: "on the phone line", callback: "on a reminder call", agent: "with an agent" };
  var TRANSFER_FINAL = ["approved", "caller_hung_up", "failed"];
  var ASSISTED_FINAL = ["approved", "declined", "cancelled", "caller_hung_up", "failed"];

  var current = null;   // {kind: "transfer" | "assisted", id: "..."}
  var lookedUp = null;  // the account number the facts on screen belong to
  var lastVersion = -1;
  var pollTimer = null;

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) { window.location.assign("/agent"); }
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: "The server could not be reached. Check the connection and try again." } };
    });
  }

  var filledAmount = "";

  // A failed look-up must not leave the previous account's facts on screen.
  function clearFacts() {
    var facts = $("account-facts");
    facts.hidden = true;
    facts.querySelectorAll("dd").forEach(function (dd) { dd.textContent = ""; });
    $("amount-help").textContent = "Look up the account first; at most the balance.";
    // The amount the look-up filled in was that account's balance; one the agent typed stays.
    if (filledAmount && $("amount").value === filledAmount) { $("amount").value = ""; }
    filledAmount = "";
  }

  function showError(message) {
    var box = $("error");
    box.textContent = message || "";
    box.hidden = !message;
    if (message) { box.scrollIntoView({ block: "nearest" }); }
  }

  function explain(data) {
    if (data && data.errors) {
      return Object.keys(data.errors).map(function (name) {
        return (INPUT_NAMES[name] || name) + " " + data.errors[name];
      }).join(". ") + ".";
    }
    return (data && data.message) || "Something went wrong.";
  }

  // --- 1. calls ------------------------------------------------------------------------------
  function loadCalls() {
    api("GET", "/api/agent/calls").then(function (result) {
      if (!result.ok) { return; }
      var select = $("live-calls");
      while (select.options.length > 1) { select.remove(1); }
      (result.data.calls || []).forEach(function (call) {
        var option = document.createElement("option");
        option.value = call.call_sid;
        var since = new Date(call.since);
        option.textContent = "Caller " + call.from + (call.account ? ", account " + call.account : "") +
          ", since " + since.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        select.appendChild(option);
      });
    });
  }

  // --- 2. account ----------------------------------------------------------------------------
  function lookUp(event) {
    if (event) { event.preventDefault(); }
    showError("");
    var number = $("account-number").value.trim();
    if (!number) { showError("Enter the account number."); return; }
    // In the body, not the URL: request lines reach access logs, account numbers must not.
    api("POST", "/api/agent/accounts/lookup", { account_number: number }).then(function (result) {
      var facts = $("account-facts");
      if (!result.ok) { clearFacts(); showError(explain(result.data)); return; }
      var a = result.data;
      lookedUp = number;
      $("acct-name").textContent = a.name;
      $("acct-number").textContent = "ending " + a.account.replace("…", "");
      $("acct-phone").textContent = "ending " + a.phone.replace("…", "");
      $("acct-balance").textContent = a.balance_text + (a.payable ? "" : " (nothing to pay by phone)");
      $("acct-due").textContent = a.due_date_text || "none";
      $("acct-past-due").textContent = a.past_due_text;
      showCard(a.saved_card);
      facts.hidden = false;
      if (!$("amount").value && a.payable) { $("amount").value = filledAmount = a.balance; }
      $("amount-help").textContent = "At most " + a.max_amount_text + ".";
    });
  }

  function showCard(card) {
    // Brand, last four and when: all the service keeps of a card (Stripe holds the card itself).
    var text = "none";
    if (card) {
      text = (BRANDS[card.brand] || "Card") + " ending " + (card.last4 || "") + ", saved " +
        new Date(card.saved_at).toLocaleDateString() + (SAVED_ON[card.channel] ? " " + SAVED_ON[card.channel] : "");
    }
    $("acct-card").textContent = text;
    $("forget-card").hidden = !card;
  }

  function forgetCard() {
    showError("");
    var number = lookedUp;  // the account shown, even if the field was edited since
    if (!number || !window.confirm("Forget the card on file? The member will have to key a card on their next payment.")) { return; }
    $("forget-card").disabled = true;
    api("POST", "/api/agent/accounts/saved-card/forget", { account_number: number }).then(function (result) {
      $("forget-card").disabled = false;
      if (!result.ok) { showError(explain(result.data)); return; }
      showCard(null);
      $("acct-card").textContent = result.data.forgotten ? "none (forgotten just now)" : "none";
    });
  }

  // --- 3. payment ----------------------------------------------------------------------------
  function mode() {
    return $("mode-assisted").checked ? "assisted" : "transfer";
  }

  function toggleMode() {
    $("return-field").hidden = mode() !== "transfer";
  }

  function startPayment(event) {
    event.preventDefault();
    showError("");
    var body = {
      call_sid: $("call-sid").value.trim(),
      account_number: $("account-number").value.trim(),
      amount: $("amount").value.trim()
    };
    if (!body.amount) { delete body.amount; }
    var path = "/api/agent/assisted";
    if (mode() === "transfer") {
      path = "/api/agent/transfers";
      var back = $("return-to").value.trim();
      if (back) { body.return_to = back; }
    }
    $("start").disabled = true;
    api("POST", path, body).then(function (result) {
      if (!result.ok) { $("start").disabled = false; showError(explain(result.data)); return; }
      current = { kind: mode(), id: result.data.id };
      lastVersion = -1;
      $("progress").hidden = false;
      $("outcome").hidden = true;
      $("new-payment").hidden = true;
      $("assisted-panel").hidden = current.kind !== "assisted";
      render(result.data);
      $("progress-heading").scrollIntoView({ block: "start" });
      schedulePoll();
    });
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    if (!current) { return; }
    var path = current.kind === "assisted" ? "/api/agent/assisted/" : "/api/agent/transfers/";
    api("GET", path + encodeURIComponent(current.id)).then(function (result) {
      if (result.ok) { render(result.data); }
      if (current && !isFinal(result.data)) { schedulePoll(); }
    });
  }

  function isFinal(data) {
    if (!data || !data.status) { return false; }
    var finals = current && current.kind === "assisted" ? ASSISTED_FINAL : TRANSFER_FINAL;
    return finals.indexOf(data.status) >= 0;
  }

  function setStatus(text, tone) {
    var status = $("status");
    if (status.textContent !== text) { status.textContent = text; }
    status.className = "status" + (tone ? " " + tone : "");
  }

  function render(data) {
    if (!data || data.version === lastVersion) { return; }
    lastVersion = data.version;
    if (current.kind === "assisted") { renderAssisted(data); } else { renderTransfer(data); }
    if (isFinal(data)) { finish(data); }
  }

  function renderTransfer(t) {
    var back = t.returned ? " The caller is being connected back to you." : "";
    switch (t.status) {
      case "waiting":
        setStatus("Waiting for the caller to confirm the amount of $" + t.amount + "…"); break;
      case "in_pay":
        if (t.field === "payment-processing") {
          setStatus("The card is being checked…");
        } else if (t.field) {
          setStatus("The caller is entering their " + (FIELD_LABELS[t.field] || t.field) + ".");
        } else {
          setStatus("The caller is at the secure card entry.");
        }
        break;
      case "declined":
        setStatus("The card was declined (" + reason(t.reason) + "). The caller may try another card.", "bad"); break;
      case "approved":
        setStatus("Approved: $" + t.amount + "." + back, "good"); break;
      case "caller_hung_up":
        setStatus("The caller hung up before paying.", "bad"); break;
      default:
        setStatus("Not paid (" + reason(t.reason) + ")." + back, "bad");
    }
  }

  function reason(code) {
    return (code || "no reason given").replace(/_/g, " ");
  }

  function fieldState(field, entry) {
    var label = FIELD_LABELS[field];
    switch (entry.state) {
      case "asked": return "Asked: waiting for the caller";
      case "entering": return "Entering… " + (entry.digits || 0) + " digits so far";
      case "entered":
        if (field === "payment-card-number" && entry.last4) {
          return "Entered: ending " + entry.last4 + (entry.brand ? " (" + entry.brand + ")" : "");
        }
        return "Entered";
      case "error": return "Problem: " + (ERROR_TYPES[entry.error] || reason(entry.error)) + ". Ask again.";
      default: return "Not asked yet";
    }
  }

  function renderAssisted(p) {
    var open = p.status === "ready" || p.status === "capturing";
    document.querySelectorAll("#assisted-panel tr[data-field]").forEach(function (row) {
      var field = row.getAttribute("data-field");
      var entry = p.fields[field] || { state: "pending" };
      var cell = row.querySelector("td.state");
      cell.textContent = fieldState(field, entry);
      cell.className = "state " + entry.state;
      row.classList.toggle("current", p.field === field && open);
      var button = row.querySelector("button.ask");
      var label = button.getAttribute("data-label");
      button.textContent = entry.state === "pending" ? "Ask for " + label : "Ask again for " + label;
      button.disabled = !open;
    });
    $("complete").disabled = !(open && p.needed.length === 0);
    $("cancel").disabled = ["starting", "ready", "capturing"].indexOf(p.status) < 0;
    switch (p.status) {
      case "starting":
      case "ready":
        setStatus("Secure entry is ready. Ask the caller for their card number."); break;
      case "capturing":
        var entry = p.fields[p.field] || {};
        if (entry.state === "error") {
          setStatus("The " + FIELD_LABELS[p.field] + " was not accepted (" + (ERROR_TYPES[entry.error] || reason(entry.error)) + "). Ask again.", "bad");
        } else if (p.needed.length === 0) {
          setStatus("Everything is entered. Complete the payment.");
        } else if (entry.state === "entered") {
          setStatus("The " + FIELD_LABELS[p.field] + " is in. Next: ask for the " + FIELD_LABELS[p.needed[0]] + ".");
        } else {
          setStatus("The caller is entering their " + FIELD_LABELS[p.field] + ".");
        }
        break;
      case "processing":
        setStatus("Checking the card…"); break;
      case "approved":
        setStatus("Approved: $" + p.amount + ".", "good"); break;
      case "declined":
        setStatus("The card was declined (" + reason(p.reason) + "). You can start again with another card.", "bad"); break;
      case "cancelled":
        setStatus("Cancelled (" + reason(p.reason) + "). Nothing was charged.", "bad"); break;
      case "caller_hung_up":
        setStatus("The caller hung up. Nothing was charged.", "bad"); break;
      default:
        setStatus("Not paid (" + reason(p.reason) + ").", "bad");
    }
  }

  function finish(data) {
    clearTimeout(pollTimer);
    if (data.status === "approved") {
      $("confirmation").textContent = data.confirmation_number || "";
      var card = data.card_brand ? data.card_brand + " ending " + data.card_last4 : "the card";
      $("outcome-detail").textContent = "$" + data.amount + " paid with " + card +
        ". Read the confirmation number to the member; they also get it by text.";
      $("outcome").hidden = false;
      $("outcome").focus();
      if (!$("account-facts").hidden) { lookUp(); }  // the balance has changed
    }
    $("new-payment").hidden = false;
    $("start").disabled = false;
  }

  function assistedAction(path, body) {
    showError("");
    return api("POST", "/api/agent/assisted/" + encodeURIComponent(current.id) + path, body).then(function (result) {
      if (!result.ok) { showError(explain(result.data)); return; }
      render(result.data);
      if (!isFinal(result.data)) { schedulePoll(); }
    });
  }

  function reset() {
    current = null;
    clearTimeout(pollTimer);
    $("progress").hidden = true;
    $("outcome").hidden = true;
    $("start").disabled = false;
    $("amount").value = "";
    showError("");
    $("call-sid").focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("live-calls").addEventListener("change", function (event) {
      if (event.target.value) { $("call-sid").value = event.target.value; }
    });
    $("refresh-calls").addEventListener("click", loadCalls);
    $("lookup-form").addEventListener("submit", lookUp);
    $("forget-card").addEventListener("click", forgetCard);
    $("pay-form").addEventListener("submit", startPayment);
    $("mode-transfer").addEventListener("change", toggleMode);
    $("mode-assisted").addEventListener("change", toggleMode);
    document.querySelectorAll("button.ask").forEach(function (button) {
      button.addEventListener("click", function () {
        assistedAction("/capture", { field: button.getAttribute("data-field") });
      });
    });
    $("complete").addEventListener("click", function () { assistedAction("/complete", {}); });
    $("cancel").addEventListener("click", function () { assistedAction("/cancel", {}); });
    $("new-payment").addEventListener("click", reset);
    toggleMode();
    loadCalls();
  });
})();

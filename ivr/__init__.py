"""The IVR web service: the composition root that wires flows, payments and prompts to Flask."""

"""The web front end: ``arrakis web`` serves the wallet page members reach from /verify and Slack's
interactive payloads, with the engine's use cases (``app.py``; its page, script and style in ``static/``)."""

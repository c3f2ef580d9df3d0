"""The Discord sandbox: a local Discord for the embedded default (and the tests)."""

# The sandbox's bot token (kept here so that the REST client need not import the server, and aiohttp).
SANDBOX_TOKEN = "sandbox-bot-token"

"""Reading the chain: the native reader (web3.py + Multicall3), holder ranking from Transfer
logs, the Score Service client, and the two-tier orchestration with its degradation rules."""

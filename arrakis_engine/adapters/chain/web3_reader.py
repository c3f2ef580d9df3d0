"""Native chain reader on web3.py, with Multicall3 batching and endpoint failover.

Single reads (``get_balance``, ``has_balance``, ``owns_nft``) make one ``eth_call`` (or
``eth_getBalance``). Batch reads for many holders go through Multicall3 ``aggregate3`` with
``allowFailure``: one ``eth_call`` carries ``chunk_size`` reads, and a sub-call that failed is
UNKNOWN for that holder, never zero. A whole request that fails moves to the next endpoint; when
every endpoint failed the affected reads are UNKNOWN (batch) or raise ChainReadError (single).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Sequence, TypeVar

import requests
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3Exception

from ...domain.chain import CHAINS
from ...chain.abi import address_word, decode_results, encode_aggregate3, uint_word
from ...domain.chain import MULTICALL3, UNKNOWN, Asset, ChainReadError, check_address

log = logging.getLogger(__name__)
T = TypeVar("T")


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


SEL_BALANCE_OF = _selector("balanceOf(address)")
SEL_BALANCE_OF_ID = _selector("balanceOf(address,uint256)")
SEL_OWNER_OF = _selector("ownerOf(uint256)")
SEL_ETH_BALANCE = _selector("getEthBalance(address)")
SEL_AGGREGATE3 = _selector("aggregate3((address,bool,bytes)[])")


class RangeRefused(ValueError):
    """The node refused an eth_getLogs range as too large (a property of the query, not an outage)."""


_RANGE_WORDS = ("range", "too many", "limit", "exceed", "more than")


class CountingHTTPProvider(HTTPProvider):
    """HTTPProvider that counts the HTTP requests it sends (for status and benchmarks)."""

    def __init__(self, *args: Any, counter: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count = counter

    def _make_request(self, method, request_data):  # one HTTP POST per call
        self._count()
        return super()._make_request(method, request_data)


_ENDPOINT_ERRORS = (requests.RequestException, Web3Exception, ValueError, OSError, TimeoutError)


class Web3ChainReader:
    """Reads one chain through one or more JSON-RPC endpoints (first healthy one wins)."""

    def __init__(self, chain: str, urls: Sequence[str], *, timeout: float = 5.0, chunk_size: int = 1000,
                 multicall: str = MULTICALL3) -> None:
        if chain not in CHAINS:
            raise ChainReadError(f"unknown chain '{chain}'")
        if not urls:
            raise ChainReadError(f"no RPC endpoints configured for {chain} (set RPC_URLS_{chain.upper()})")
        self.chain = chain
        self.chain_id = CHAINS[chain]
        self.chunk_size = max(1, int(chunk_size))
        self.multicall = to_checksum_address(multicall)
        self._lock = threading.Lock()
        self.requests = 0
        self._w3 = [Web3(CountingHTTPProvider(u, request_kwargs={"timeout": timeout}, counter=self._tick,
                                              exception_retry_configuration=None)) for u in urls]
        self._preferred = 0

    def _tick(self) -> None:
        with self._lock:
            self.requests += 1

    @property
    def endpoints(self) -> int:
        return len(self._w3)

    def _with_failover(self, what: str, fn: Callable[[Web3], T]) -> T:
        """Run ``fn`` against the preferred endpoint, then the others; remember the one that worked."""
        order = list(range(self._preferred, len(self._w3))) + list(range(0, self._preferred))
        last: Exception | None = None
        for i in order:
            try:
                result = fn(self._w3[i])
            except (ContractLogicError, RangeRefused):
                raise
            except _ENDPOINT_ERRORS as exc:
                last = exc
                log.warning("%s endpoint %d of %d failed for %s (%s); trying the next", self.chain, i + 1,
                            len(self._w3), what, type(exc).__name__)
                continue
            self._preferred = i
            return result
        raise ChainReadError(f"every {self.chain} endpoint failed for {what} (last: {type(last).__name__})",
                             hint="the result is unknown; nothing was treated as a zero balance")

    @staticmethod
    def _rpc(w3: Web3, method: str, params: list):
        """One raw JSON-RPC request through web3's provider (no middleware round trips)."""
        resp = w3.provider.make_request(method, params)
        if not isinstance(resp, dict):
            raise ValueError("the endpoint answered something that is not JSON-RPC")
        if resp.get("error"):
            err = resp["error"] if isinstance(resp["error"], dict) else {"message": str(resp["error"])}
            message = str(err.get("message", ""))
            if err.get("code") == 3 or "revert" in message.lower():
                raise ContractLogicError(message)
            if method == "eth_getLogs" and any(w in message.lower() for w in _RANGE_WORDS):
                raise RangeRefused(message[:200])
            raise ValueError(f"JSON-RPC error {err.get('code')}: {message[:200]}")
        if "result" not in resp:
            raise ValueError("the endpoint's answer has no result")
        return resp["result"]

    def _call(self, to: str, data: bytes, what: str, block: int | None = None) -> bytes:
        tx = {"to": to_checksum_address(to), "data": "0x" + data.hex()}
        tag = "latest" if block is None else hex(block)
        result = self._with_failover(what, lambda w3: self._rpc(w3, "eth_call", [tx, tag]))
        try:
            return bytes.fromhex(result[2:] if result.startswith("0x") else result)
        except (AttributeError, ValueError) as exc:
            raise ChainReadError(f"{what}: the endpoint answered with malformed data") from exc

    def get_logs(self, address: str, topic0: bytes, from_block: int, to_block: int) -> list[dict]:
        """Logs of one contract and event between two blocks (inclusive). Raises RangeRefused when
        the node finds the range too large, ChainReadError when every endpoint failed."""
        query = {"address": to_checksum_address(address), "topics": ["0x" + topic0.hex()],
                 "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return self._with_failover("event logs", lambda w3: self._rpc(w3, "eth_getLogs", [query]))

    def get_logs_many(self, addresses: Sequence[str], topics0: Sequence[bytes], from_block: int,
                      to_block: int) -> list[dict]:
        """Logs of several contracts, any of several events, between two blocks (inclusive): one
        request. Raises RangeRefused / ChainReadError like :meth:`get_logs`."""
        query = {"address": [to_checksum_address(a) for a in addresses],
                 "topics": [["0x" + t.hex() for t in topics0]],
                 "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return self._with_failover("event logs", lambda w3: self._rpc(w3, "eth_getLogs", [query]))

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on the chain as the endpoint sees it now (None: no such block)."""
        header = self.block_header(number)
        return None if header is None else header["hash"]

    def block_header(self, number: int) -> dict | None:
        """``{"hash", "timestamp"}`` of block ``number`` now (None: no such block); one request."""
        block = self._with_failover("block", lambda w3: self._rpc(w3, "eth_getBlockByNumber", [hex(number), False]))
        if block is None:
            return None
        ts = block["timestamp"]
        return {"hash": str(block["hash"]).lower(), "timestamp": int(ts, 16) if isinstance(ts, str) else int(ts)}

    def heads(self, timeout: float = 2.0) -> list[int | None]:
        """Each endpoint's head block (None where it did not answer): how far behind each one is."""
        out: list[int | None] = []
        for w3 in self._w3:
            try:
                out.append(int(self._rpc(w3, "eth_blockNumber", []), 16))
            except _ENDPOINT_ERRORS:
                out.append(None)
        return out

    # --- single reads -------------------------------------------------------------------------

    def block_number(self) -> int:
        return int(self._with_failover("block number", lambda w3: self._rpc(w3, "eth_blockNumber", [])), 16)

    def get_balance(self, address: str, token: str | None = None) -> int:
        """Native balance (token None) or ERC-20 balance, in base units. Raises ChainReadError."""
        address = check_address(address)
        if token is None:
            return int(self._with_failover(
                "native balance", lambda w3: self._rpc(w3, "eth_getBalance", [to_checksum_address(address), "latest"])),
                16)
        token = check_address(token, "token")
        try:
            raw = self._call(token, SEL_BALANCE_OF + address_word(address), "ERC-20 balance")
        except ContractLogicError as exc:
            raise ChainReadError(f"the token contract {token} refused balanceOf") from exc
        return _uint(raw)

    def has_balance(self, address: str, token: str | None, min_amount: int) -> bool:
        return self.get_balance(address, token) >= int(min_amount)

    def owns_nft(self, address: str, collection: str, token_ids: Iterable[int] | None = None, *,
                 standard: str = "erc721", min_count: int = 1) -> bool:
        """ERC-721: owns any of ``token_ids`` (or at least ``min_count`` when no ids are given).
        ERC-1155: holds at least one of any of ``token_ids``. Raises ChainReadError."""
        address = check_address(address)
        collection = check_address(collection, "collection")
        ids = list(token_ids or [])
        if standard == "erc1155":
            if not ids:
                raise ChainReadError("an ERC-1155 ownership check needs token ids")
            for token_id in ids:
                raw = self._call(collection, SEL_BALANCE_OF_ID + address_word(address) + uint_word(token_id),
                                 "ERC-1155 balance")
                if _uint(raw) > 0:
                    return True
            return False
        if not ids:
            raw = self._call(collection, SEL_BALANCE_OF + address_word(address), "ERC-721 balance")
            return _uint(raw) >= min_count
        for token_id in ids:
            try:
                raw = self._call(collection, SEL_OWNER_OF + uint_word(token_id), "ERC-721 owner")
            except ContractLogicError:
                continue  # the token does not exist (burned or never minted): not owned
            if _address(raw) == address:
                return True
        return False

    # --- batch reads ----------------------------------------------------------------------------

    def balances(self, asset: Asset, addresses: Sequence[str], *, block: int | None = None) -> dict[str, int | object]:
        """The asset's balance for every address, in base units (ERC-721: how many it holds), at
        the latest block or at ``block``. Reads that failed are UNKNOWN."""
        addrs = [check_address(a) for a in addresses]
        if asset.kind == "native":
            calls = [(self.multicall.lower(), SEL_ETH_BALANCE + address_word(a)) for a in addrs]
        elif asset.kind == "erc1155":
            token = uint_word(asset.token_id)
            calls = [(asset.address, SEL_BALANCE_OF_ID + address_word(a) + token) for a in addrs]
        else:
            calls = [(asset.address, SEL_BALANCE_OF + address_word(a)) for a in addrs]
        results = self.aggregate(calls, what=f"{asset.kind} balances", block=block)
        return {a: (_uint(r) if r is not UNKNOWN else UNKNOWN) for a, r in zip(addrs, results)}

    def owners_of(self, collection: str, token_ids: Sequence[int]) -> dict[int, str | object]:
        """ERC-721 owner of each token id (lower-case), None for a token that does not exist
        (``ownerOf`` reverted: burned or never minted), UNKNOWN where the read failed."""
        collection = check_address(collection, "collection")
        calls = [(collection, SEL_OWNER_OF + uint_word(t)) for t in token_ids]
        results = self.aggregate(calls, what="ERC-721 owners", reverted=None)
        return {t: (r if r is UNKNOWN or r is None else _address(r)) for t, r in zip(token_ids, results)}

    def aggregate(self, calls: Sequence[tuple[str, bytes]], *, what: str = "batch",
                  block: int | None = None, reverted: object = UNKNOWN) -> list[bytes | object]:
        """Run many calls through Multicall3 ``aggregate3`` (allowFailure), ``chunk_size`` per request.
        Returns each call's return data, or UNKNOWN for a failed sub-call or a failed request."""
        out: list[bytes | object] = []
        for start in range(0, len(calls), self.chunk_size):
            chunk = calls[start:start + self.chunk_size]
            payload = SEL_AGGREGATE3 + encode_aggregate3(chunk)
            try:
                raw = self._call(self.multicall, payload, what, block)
                decoded = decode_results(raw)
            except (ChainReadError, ContractLogicError) as exc:
                log.warning("%s: %d reads are unknown (%s)", what, len(chunk), exc)
                out.extend([UNKNOWN] * len(chunk))
                continue
            except Exception as exc:  # an answer we cannot decode is not an answer
                log.warning("%s: could not decode a Multicall3 answer (%s); %d reads are unknown",
                            what, type(exc).__name__, len(chunk))
                out.extend([UNKNOWN] * len(chunk))
                continue
            for ok, data in decoded:
                # ``reverted``: what a sub-call that ran and reverted stands for (UNKNOWN unless
                # the caller knows what a revert means, as ownerOf's for a token that does not exist)
                out.append(bytes(data) if ok and len(data) >= 32 else (UNKNOWN if ok else reverted))
        return out


def _uint(raw: bytes) -> int:
    if len(raw) < 32:
        raise ChainReadError("the contract answered with fewer than 32 bytes")
    return int.from_bytes(raw[:32], "big")


def _address(raw: bytes) -> str:
    if len(raw) < 32:
        raise ChainReadError("the contract answered with fewer than 32 bytes")
    return "0x" + raw[12:32].hex()

"""The hand-written Multicall3 encoding is byte-identical to eth_abi's."""

from __future__ import annotations

from eth_abi import decode, encode
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from arrakis_engine.chain.abi import decode_results, encode_aggregate3

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
calls = st.lists(st.tuples(addresses, st.binary(max_size=100)), max_size=20)


@settings(max_examples=200)
@given(calls, st.booleans())
def test_encoding_matches_eth_abi(cs, allow):
    ours = encode_aggregate3(cs, allow)
    theirs = encode(["(address,bool,bytes)[]"], [[(to_checksum_address(t), allow, d) for t, d in cs]])
    assert ours == theirs


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=20))
def test_decoding_matches_eth_abi(results):
    raw = encode(["(bool,bytes)[]"], [results])
    assert decode_results(raw) == [(ok, data) for ok, data in decode(["(bool,bytes)[]"], raw)[0]]


def test_truncated_answers_are_refused():
    import pytest

    raw = encode(["(bool,bytes)[]"], [[(True, b"x" * 40)]])
    with pytest.raises(ValueError):
        decode_results(raw[:-40])

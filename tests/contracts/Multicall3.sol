// SPDX-License-Identifier: UNLICENSED
// A Multicall3-compatible aggregator written for the tests: the same aggregate3 and
// getEthBalance interface as the contract deployed at 0xcA11bde05977b3631167028862bE2a173976CA11
// on every supported chain. The tests place its runtime code at that address with anvil_setCode.
pragma solidity ^0.8.24;

contract Multicall3 {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        uint256 length = calls.length;
        returnData = new Result[](length);
        for (uint256 i = 0; i < length; i++) {
            Call3 calldata c = calls[i];
            (bool ok, bytes memory data) = c.target.call(c.callData);
            require(ok || c.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(ok, data);
        }
    }

    function getEthBalance(address addr) external view returns (uint256) {
        return addr.balance;
    }

    function getBlockNumber() external view returns (uint256) {
        return block.number;
    }
}

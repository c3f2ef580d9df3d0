// Compile the test contracts offline with solc-js; write ABI and bytecode to build/contracts.json.
// Usage: node tests/contracts/compile.js
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const root = path.resolve(here, "..", "..");
const sources = {};
for (const name of ["TestTokens.sol", "Multicall3.sol"]) {
  sources[name] = { content: fs.readFileSync(path.join(here, name), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

function findImports(importPath) {
  const candidate = path.join(root, "node_modules", importPath);
  if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  return { error: `not found: ${importPath}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const artifacts = {};
for (const file of Object.keys(output.contracts)) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    artifacts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object, runtime: "0x" + c.evm.deployedBytecode.object };
  }
}
fs.mkdirSync(path.join(here, "build"), { recursive: true });
fs.writeFileSync(path.join(here, "build", "contracts.json"), JSON.stringify(artifacts));
console.log(`compiled ${Object.keys(artifacts).join(", ")} with solc ${solc.version()}`);

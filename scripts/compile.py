"""Compile the contracts and write contracts/artifacts/ (same as `ledger compile`)."""

from ledger_api.chain.build import compile_contracts, find_compiler, write_artifacts

if __name__ == "__main__":
    compiler = find_compiler()
    for path in write_artifacts(compile_contracts(compiler)):
        print(f"wrote {path} with {compiler.name}")

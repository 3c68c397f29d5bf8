"""Imports from bank statements and spreadsheets (issue 14).

- `reading`: bytes -> header and rows of text (encoding, delimiter, header row, XLSX),
  bounded; refusals carry a stable code (`reading.UnreadableFile`).
- amounts are read by `core.amounts.signed` (the grammar the console's forms use too; `AmountError.code`).
- `schemas`: `Mapping` (a profile's column mapping) and the answers (`ImportPreview`,
  `RowVerdict` with `verdict`, `code`, `params`, `message`, `StatementCheck`).
- `profiles`: saved mappings per charity.
- `service`: `preview`, `show`, `start_commit`/`run_commit`, `report_csv`,
  `statement_check`, `remove` (see its docstring for the protocol).
- `routes`: the HTTP API.

The console builds its pages on `service` and `profiles`; every verdict and refusal has a
code and parameters to say it in any language, and an English message.
"""

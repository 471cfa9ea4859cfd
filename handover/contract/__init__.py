"""The contract: the playbook (models by section, YAML loader), phases, deadlines.

`loader.load_playbook` reads a file into `playbook.Playbook`; each playbook
section has its module (`parties`, `perimeter`, `services`, `security`,
`reversibility`, `backups`, `checklists` for `phases`), on the field types of
`fields` and `recipients` and the base of `base`.
"""

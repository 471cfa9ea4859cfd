"""The contract: the playbook (models by section, YAML loader), phases, deadlines."""

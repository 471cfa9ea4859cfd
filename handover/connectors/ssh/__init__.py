"""SSH hosts (paramiko): `connector` (the session), `target` (where, as whom, credentials),
`sources` (datasets as tar streams), `streams` (exec channel bytes), `sftp` (the fallback for
SFTP-only accounts), `transport` (paramiko tuned for bulk data), `trust` (host keys),
`first_contact` (show and pin a new host's key), `url` (`ssh://` for `handover seal`)."""

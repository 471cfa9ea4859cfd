"""The sizes and waits of a remote command's streams, on either carrier (paramiko, `ssh`).

Apart from `streams.py` (the paramiko channel) so that the `ssh` carrier
(`openssh_stream.py`) shares them without importing paramiko.
"""

from __future__ import annotations

__all__ = ["EXIT_STATUS_WAIT_S", "IDLE_TIMEOUT_S", "READ_SIZE", "STDERR_KEEP_BYTES"]

READ_SIZE = 1024 * 1024  # one recv from the channel
STDERR_KEEP_BYTES = 8 * 1024  # tail of a remote stderr kept for error messages
IDLE_TIMEOUT_S = 300.0  # no byte for this long on a stream: the host is stuck
EXIT_STATUS_WAIT_S = 30.0  # after EOF, how long the exit status may take to arrive

"""SSH hosts (paramiko): the connector, transport tuning, streams, SFTP fallback, host-key trust."""

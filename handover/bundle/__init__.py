"""Restitution bundles: the age format, tar streams, manifest and signature.

Kept empty on purpose: import the submodules you need (`handover.bundle.age`,
`handover.bundle.sshsig`, ...) so that importing the package stays cheap.
"""

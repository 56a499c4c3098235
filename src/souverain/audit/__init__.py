"""The tamper-evident audit log.

merkle.py      RFC 9162 Merkle tree: hashes, proofs, a compact accumulator
checkpoint.py  C2SP signed checkpoints (Ed25519), the signing key file
log.py         group-committed appends, checkpointing
leaves.py      what a leaf says (never a prompt or an answer)
payloads.py    retained bodies, encrypted per data subject; erasure
verify.py      verification and proofs over the stored log
gdpr.py        the GDPR Art. 30 record of processing
cli.py         `souverain audit ...`
"""

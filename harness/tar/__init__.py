"""Tar streams read (and hashed) byte for byte: the ground the archive readers, the differ and the reference
writer share, without reaching into each other.

    streams.py   forward-only views of byte streams (windows, read-ahead, errors that name their layer)
    hashing.py   sha256 digests of bytes and of streams, computed as they are read
    members.py   a tar read member by member with tarfile, broken input named; TarInfo → TarHeader
    blocks.py    a tar read as raw header blocks and content lengths, for comparing without parsing
    listing.py   the files inside a layer tar, each with its content digest
"""

"""Custody of the root key: the one key the catalog's key material is sealed under.

One file per backend behind ``base.RootKey``: ``file`` (a 0600 file) and ``pkcs11`` (a
non-extractable AES key inside a token). Sealing and unsealing happen inside the custody;
the root key's value never leaves it.
"""

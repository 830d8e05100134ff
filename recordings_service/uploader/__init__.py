"""The spool uploader (``recordings-service upload-watch``): runs beside a PBX and moves
each finished recording into the service, then removes the plaintext file."""

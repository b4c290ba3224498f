"""Runtime files and folders (metadata in the runtime table, content in the artifacts bucket) and
the semantic index over text chunks."""

"""Data: raw text -> token files on disk (`prepare`) and random training windows from them (`dataset`)."""

"""The one error a caller must handle when a document cannot be read."""


class BadDocument(ValueError):
    """A document the pipeline cannot read: not a PDF, damaged, locked, empty or out of bounds."""

    def __init__(self, doc_label: str, reason: str) -> None:
        super().__init__(f"document {doc_label}: {reason}")
        self.doc_label = doc_label
        self.reason = reason

    def __reduce__(self):  # picklable across the process pool despite the two-argument constructor
        return (type(self), (self.doc_label, self.reason))

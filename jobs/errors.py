"""Stable error codes written to jobs.error_code. The bot turns each into a message in the user's language."""

from __future__ import annotations

# Errors the user can cause (a short message telling them what to do).
EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"  # corrupt bytes, text, a PDF...
UNSUPPORTED_FORMAT = "unsupported_format"  # e.g. HEIC without a decoder
IMAGE_TOO_SMALL = "image_too_small"
IMAGE_TOO_LARGE = "image_too_large"  # too many pixels to process (incl. decompression bombs)
FILE_TOO_LARGE = "file_too_large"  # more bytes than we (or Telegram) accept
NO_FACE = "no_face"
MANY_FACES = "many_faces"
TOO_FEW_PHOTOS = "too_few_photos"
BAD_LORA = "bad_lora"
BAD_REQUEST = "bad_request"  # an unknown style, an empty prompt...

# Errors we cause (logged with the job id; the user hears "try again later").
OUT_OF_MEMORY = "out_of_memory"
MODEL_MISSING = "model_missing"
WORKER_LOST = "worker_lost"
INTERNAL = "internal"

USER_ERRORS = frozenset(
    {
        EMPTY_FILE,
        NOT_AN_IMAGE,
        UNSUPPORTED_FORMAT,
        IMAGE_TOO_SMALL,
        IMAGE_TOO_LARGE,
        FILE_TOO_LARGE,
        NO_FACE,
        MANY_FACES,
        TOO_FEW_PHOTOS,
        BAD_LORA,
        BAD_REQUEST,
    }
)


class JobError(Exception):
    """An error with a stable code: the worker records it as the job's failure."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self):
        """Pickled as a plain JobError (its code and message): it crosses from the worker's decode processes,
        and a subclass's own __init__ arguments (ModelMissing's role, model id) are not kept in args."""
        return JobError, (self.code, self.message)

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Stream every upload to a temporary file and stop reading one that is too large.

    Files always land on disk (never in memory) so the engine can sniff and probe them by
    path; the oversize flag lets the form say what happened instead of a bare 400.
    """

    def new_file(self, *args, **kwargs):
        self.received = 0
        return super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.AVATAR_MAX_UPLOAD_BYTES:
            self.request.oversize_upload = self.field_name
            raise SkipFile()
        return super().receive_data_chunk(raw_data, start)

"""Media: uploads streamed to storage, who may fetch them, attachment to messages, cleanup.

`config` (MediaConfig), `policy` (file names, kinds, the upload rate and quota), `storage`
(spooling an upload and storing it under its content hash), `attachments` (fetching media and
showing it in messages), `cleanup` (removing uploads no message shows).
"""

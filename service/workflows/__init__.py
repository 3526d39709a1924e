"""Use cases the API, the CLI and the batch workers share.

Review and approval, calibration views, refits, exports, class-set files, webhooks. Built on
``service.persistence``; never imports HTTP code.
"""

"""LTI 1.3 Assignment and Grade Services: the Score a tool POSTs to ``{lineitem}/scores``.

From the 1EdTech AGS 2.0 spec (Score service) and the platforms' code:
- instructure/canvas-lms ``app/controllers/lti/ims/scores_controller.rb``: ``ACCEPT_GIVEN_SCORE_TYPES``
  is ``FullyGraded`` and ``PendingManual`` - a score given with either is written into the gradebook,
  so a draft must carry no ``scoreGiven`` at all.
- moodle/moodle ``mod/lti/service/gradebookservices/classes/local/resources/scores.php``: the request
  must be ``application/vnd.ims.lis.v1.score+json``; ``userId``, ``gradingProgress``,
  ``activityProgress`` and ``timestamp`` are required; ``scoreGiven`` needs ``scoreMaximum``; a
  timestamp not newer than the stored one is refused (409).
Only the spec's keys go in (no draftmark metadata).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.lms.common import Script, iso

MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"


def score(script: Script, user_id: str) -> dict[str, Any]:
    """Approved: ``FullyGraded``/``Completed`` with the score, stamped with the approval time.

    A draft: ``PendingManual``/``Submitted`` with no score and no comment (a teacher must still mark it).
    """
    view = script.view
    if script.released and view.approved_at is not None:
        return {
            "userId": user_id,
            "scoreGiven": view.total,
            "scoreMaximum": view.max_total,
            "comment": view.comment(),
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": iso(view.approved_at),
        }
    return {
        "userId": user_id,
        "activityProgress": "Submitted",
        "gradingProgress": "PendingManual",
        "timestamp": iso(datetime.now(UTC)),
    }

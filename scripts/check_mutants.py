# ruff: noqa: E501  (a table of code snippets: each mutant is one line)
"""Issue 19's fixes, each replaced by the old code in turn: its test must fail (a mutant is "killed").

    .venv/bin/python scripts/check_mutants.py [NAME-PART ...]

Every mutant is applied to the working tree, the named tests run, and the file is restored (also
on Ctrl-C). PostgreSQL-only defects need TEST_POSTGRES_URL (``eval "$(bash scripts/test-postgres.sh)"``).
Prints KILLED or SURVIVED per mutant; exits 1 if any survived.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MUTANTS = [
    (
        "1 rows bound",
        "service/api/class_set.py",
        "MAX_OTHER_ENTRIES = 1000\n",
        "MAX_OTHER_ENTRIES = 10**9\n",
        "tests/test_hostile_round3.py -k 'empty_rows or many_empty'",
    ),
    (
        "1 skip list",
        "service/api/class_set.py",
        "        if len(self.skipped) < SKIPPED_LISTED:\n",
        "        if True:\n",
        "tests/test_hostile_round3.py -k skipped_rows",
    ),
    (
        "2 import refits inline",
        "service/api/exemplar_routes.py",
        "    state.refits.request(state.store, principal, scheme)\n    count = await",
        "    await asyncio.to_thread(exemplars.refit, principal, scheme)\n    count = await",
        "tests/test_hostile_round3.py -k 'import_answers_before and sqlite'",
    ),
    (
        "2 bound total",
        "service/workflows/refits.py",
        "        async with owner_slots, self._slots:",
        "        if True:",
        "tests/test_hostile_round3.py -k bounded",
    ),
    (
        "2 delete keeps fit",
        "service/persistence/exemplars.py",
        "            s.execute(\n                delete(CalibratorRow).where(\n                    CalibratorRow.owner == owner,\n                    CalibratorRow.scheme_id == scheme_id,",
        "            s.execute(\n                delete(CalibratorRow).where(\n                    CalibratorRow.owner == 'nobody',\n                    CalibratorRow.scheme_id == scheme_id,",
        "tests/test_hostile_round3.py -k 'deletion_removes and sqlite'",
    ),
    (
        "3 isdigit",
        "service/calibration/importing.py",
        "                if _WHOLE_NUMBER.fullmatch(raw) is None:",
        "                if not raw.lstrip('-').isdigit() or len(raw) > 4:",
        "tests/test_hostile_round3.py -k 'malformed and sqlite'",
    ),
    (
        "3 long int",
        "service/calibration/importing.py",
        "        except ValueError as exc:  # an integer",
        "        except KeyError as exc:  # an integer",
        "tests/test_hostile_round3.py -k 'malformed and sqlite'",
    ),
    (
        "4 ids",
        "service/calibration/importing.py",
        "    problem = identifier_problem(value)\n",
        "    problem = None\n",
        "tests/test_hostile_round3.py -k 'malformed and sqlite'",
    ),
    (
        "4 duplicates",
        "service/calibration/importing.py",
        "        elif first[1].marks != script.marks:",
        "        elif False:",
        "tests/test_hostile_round3.py -k 'malformed and sqlite'",
    ),
    (
        "5 upsert",
        "service/persistence/exemplars.py",
        "        statement = insert(ExemplarRow).values(values).on_conflict_do_nothing(index_elements=_UNIQUE)",
        "        statement = insert(ExemplarRow).values(values)",
        "tests/test_hostile_round3.py -k 'racing and postgres'",
    ),
    (
        "5 one transaction",
        "service/persistence/stores/reviews.py",
        "            if also is not None:\n                also(s)\n",
        "",
        "tests/test_hostile_round3.py -k 'one_transaction and sqlite'",
    ),
    (
        "6 reask",
        "service/reask.py",
        "    except ValueError:  # an integer",
        "    except KeyError:  # an integer",
        "tests/test_hostile_round3.py -k huge",
    ),
    (
        "7 labels",
        "service/api/class_set.py",
        "        name = plain_label(label) or where",
        "        name = label or where",
        "tests/test_hostile_round3.py -k 'control_characters and sqlite'",
    ),
    (
        "8 strict",
        "service/workflows/review.py",
        "    marks: dict[str, StrictInt] = Field(",
        "    marks: dict[str, int] = Field(",
        "tests/test_hostile_round3.py -k 'json_integers and sqlite'",
    ),
    (
        "ops token",
        "service/api/deps.py",
        "    if token is None:\n        return True",
        "    if True:\n        return True",
        "tests/test_hostile_round3.py -k 'ops_token and sqlite'",
    ),
    (
        "ops short",
        "service/settings.py",
        "len(self.ops_token.get_secret_value().strip()) < 16",
        "len(self.ops_token.get_secret_value().strip()) < 1",
        "tests/test_hostile_round3.py -k short_ops",
    ),
    (
        "21 range",
        "schemas/calibration.py",
        "        if self.seen is not None:\n",
        "        if False:\n",
        "tests/test_calibration_range.py",
    ),
    (
        "21 sceptic",
        "service/calibration/fit.py",
        "    return [int(min(labels[-1], max(labels[0], round(float(p))))) for p in predicted]",
        "    return [int(min(labels[-1], max(labels[0], int(float(p))))) for p in predicted]",
        "tests/test_calibration_range.py",
    ),
    (
        "21 margin",
        "service/calibration/fit.py",
        "(gain is not None and gain > SELECTION_MARGIN)",
        "(gain is not None and gain > 0)",
        "tests/test_calibration.py -k margin",
    ),
]
only = sys.argv[1:]
survived = 0
for name, path, old, new, test in MUTANTS:
    if only and not any(o in name for o in only):
        continue
    f = ROOT / path
    original = f.read_text()
    assert original.count(old) == 1, (name, original.count(old))
    f.write_text(original.replace(old, new))
    try:
        result = subprocess.run(
            f"cd {ROOT} && timeout 900 .venv/bin/pytest -q -x -p no:cacheprovider {test}",
            shell=True,
            capture_output=True,
            text=True,
        )
        tail = [line for line in result.stdout.splitlines() if line.strip()][-1:]
        survived += result.returncode == 0
        print(f"{name}: {'KILLED' if result.returncode != 0 else 'SURVIVED'} {tail}", flush=True)
    finally:
        f.write_text(original)
sys.exit(1 if survived else 0)

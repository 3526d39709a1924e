from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.scheme import MarkScheme
from service.errors import NotFoundError, SchemeError
from service.schemes import SchemeLibrary, load_scheme_file, parse_scheme


def scheme_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "t",
        "version": "1",
        "title": "T",
        "subject": "History",
        "question": "Why?",
        "total_marks": 6,
        "objectives": [
            {
                "id": "AO1",
                "name": "Knowledge",
                "max_marks": 6,
                "levels": [
                    {"level": 0, "min_mark": 0, "max_mark": 0, "descriptor": "none"},
                    {"level": 1, "min_mark": 1, "max_mark": 3, "descriptor": "some"},
                    {"level": 2, "min_mark": 4, "max_mark": 6, "descriptor": "good"},
                ],
            }
        ],
    }
    data.update(overrides)
    return data


def levels(*bands: tuple[int, int, int]) -> list[dict[str, Any]]:
    return [{"level": lv, "min_mark": lo, "max_mark": hi, "descriptor": "d"} for lv, lo, hi in bands]


def with_levels(*bands: tuple[int, int, int]) -> dict[str, Any]:
    data = scheme_data()
    data["objectives"][0]["levels"] = levels(*bands)
    return data


def test_valid_scheme_loads() -> None:
    scheme = parse_scheme(scheme_data())
    assert scheme.objective("AO1").level_for_mark(5).level == 2
    assert scheme.ref == "t@1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_levels((0, 0, 0), (1, 1, 2), (2, 4, 6)), "marks 3-3 fall between level 1 and level 2"),
        (with_levels((0, 0, 1), (1, 1, 3), (2, 4, 6)), "overlaps level 1"),
        (with_levels((0, 0, 0), (1, 1, 3), (2, 4, 5)), "the top band ends at 5 but max_marks is 6"),
        (with_levels((1, 2, 3), (2, 4, 6)), "it must start at 0 (or 1)"),
        (with_levels((0, 0, 0), (2, 1, 3), (1, 4, 6)), "level numbers must rise"),
        (scheme_data(total_marks=10), "objective maxima add up to 6 (AO1 6) but total_marks is 10"),
    ],
)
def test_invalid_levels_explain_the_fix(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(SchemeError) as info:
        parse_scheme(data)
    assert expected in info.value.message


def test_duplicate_ids_are_named() -> None:
    data = scheme_data(total_marks=12)
    data["objectives"].append(dict(data["objectives"][0]))
    with pytest.raises(SchemeError, match="repeated: AO1"):
        parse_scheme(data)


def test_band_with_min_above_max() -> None:
    with pytest.raises(SchemeError, match="min_mark 3 is above max_mark 1"):
        parse_scheme(with_levels((0, 0, 0), (1, 3, 1), (2, 4, 6)))


def test_levels_given_out_of_order_are_sorted() -> None:
    scheme = parse_scheme(with_levels((2, 4, 6), (0, 0, 0), (1, 1, 3)))
    assert [lv.level for lv in scheme.objectives[0].levels] == [0, 1, 2]


def test_grade_boundaries() -> None:
    data = scheme_data(grade_boundaries=[{"grade": "B", "min_total": 3}, {"grade": "C", "min_total": 0}])
    scheme = parse_scheme(data)
    assert scheme.grade_for_total(2) == "C"
    assert scheme.grade_for_total(6) == "B"
    with pytest.raises(SchemeError, match="lowest grade boundary"):
        parse_scheme(scheme_data(grade_boundaries=[{"grade": "B", "min_total": 3}]))


def test_yaml_and_json_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(scheme_data()))
    (tmp_path / "b.json").write_text(json.dumps(scheme_data(id="b")))
    assert load_scheme_file(tmp_path / "a.yaml").id == "t"
    assert load_scheme_file(tmp_path / "b.json").id == "b"
    (tmp_path / "bad.yaml").write_text("id: [unclosed")
    with pytest.raises(SchemeError, match="not valid YAML"):
        load_scheme_file(tmp_path / "bad.yaml")
    with pytest.raises(SchemeError, match="no such file"):
        load_scheme_file(tmp_path / "missing.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SchemeError, match="must be a mapping"):
        load_scheme_file(tmp_path / "list.json")


def test_builtin_library(library: SchemeLibrary, stalin: MarkScheme, holistic: MarkScheme) -> None:
    assert {s.id for s in library.list()} >= {"stalin-power-1929", "persuasive-holistic-6"}
    assert stalin.total_marks == 15
    assert [ao.id for ao in stalin.objectives] == ["AO1", "AO2", "AO3"]
    content = " ".join(stalin.objective("AO1").indicative_content)
    for topic in (
        "General Secretary",
        "Testament",
        "Lenin Enrolment",
        "factions",
        "Trotsky",
        "Zinoviev",
        "Socialism in One Country",
        "United Opposition",
        "Bukharin",
        "1927",
        "Right",
    ):
        assert topic in content
    assert holistic.objectives[0].min_marks == 1
    assert holistic.grade_for_total(6) == "Excellent"


def test_library_lookup_errors(library: SchemeLibrary) -> None:
    with pytest.raises(NotFoundError, match="known schemes"):
        library.get("nope")
    with pytest.raises(NotFoundError, match="no version '9'"):
        library.resolve("stalin-power-1929@9")
    assert library.resolve("stalin-power-1929@1.0").version == "1.0"


def test_library_refuses_changed_content_under_same_version(library: SchemeLibrary, stalin: MarkScheme) -> None:
    lib = SchemeLibrary([])
    lib.add(stalin)
    lib.add(stalin)
    changed = MarkScheme.model_validate({**stalin.model_dump(), "title": "changed"})
    with pytest.raises(SchemeError, match="new version"):
        lib.add(changed)

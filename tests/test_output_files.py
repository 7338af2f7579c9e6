"""Output files: the user's umask, wall maps in Chinese, flag labels, map colours."""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path

import folium
import pandas as pd
import pytest

import gridmap
from gridmap.export import grid_sheet
from gridmap.flood import PALETTE as FLOOD_PALETTE
from gridmap.io import atomic_write, file_mode, write_table
from gridmap.maps import FLAGGED_COLOUR, PALETTE, plan_map, save_html
from gridmap.plan import FLAG_LABELS, flag_labels

SRC = Path(gridmap.__file__).parent


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.fixture(scope="module")
def plan(main_job_out):
    return gridmap.read_plan(main_job_out / "plan.gpkg")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- umask
@pytest.mark.parametrize(("mask", "want"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_follow_the_umask(umask, tmp_path, mask, want):
    umask(mask)
    assert file_mode() == want
    df = pd.DataFrame({"网格": ["a", "b"], "户数": [300, 400]})
    csv, xlsx = write_table(df, tmp_path / "t")
    m = folium.Map(tiles=None)
    html = save_html(m, tmp_path / "m.html")
    png = atomic_write(tmp_path / "x.png", lambda p: p.write_bytes(b"\x89PNG"))
    for path in (csv, xlsx, html, png):
        assert _mode(path) == want, (path.name, oct(_mode(path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.html", "t.csv", "t.xlsx", "x.png"]


def test_main_job_files_are_readable_by_the_group(main_job_out):
    # the fixture ran under the session's umask; every file it wrote has that mode
    want = file_mode()
    files = [p for p in main_job_out.rglob("*") if p.is_file()]
    assert len(files) > 30
    bad = {p.name: oct(_mode(p)) for p in files if _mode(p) != want}
    assert not bad, bad


def test_failed_write_leaves_no_file(tmp_path):
    def boom(p: Path):
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "t.csv", boom)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- flags
def _flag_codes_in_source() -> set[str]:
    pats = [
        r"flags\.append\(\s*\"(\w+)\"",
        r"_add_flag\([^,]+,\s*\"(\w+)\"\)",
        r"\"flags\":\s*\"(\w+)\"",
    ]
    codes: set[str] = set()
    files = [*SRC.joinpath("partition").rglob("*.py"), SRC / "validate.py", SRC / "plan.py"]
    files += [*SRC.glob("edit*.py"), *SRC.joinpath("edit").rglob("*.py")]
    for f in files:
        text = f.read_text(encoding="utf-8")
        for p in pats:
            codes |= set(re.findall(p, text))
    return codes


def test_every_flag_code_has_a_chinese_label():
    codes = _flag_codes_in_source()
    assert {"split_compound", "below_floor", "out_of_range", "no_households"} <= codes
    missing = codes - set(FLAG_LABELS)
    assert not missing, missing
    for zh, en in FLAG_LABELS.values():
        assert re.search(r"[\u4e00-\u9fff]", zh) and en.isascii()


def test_flag_labels():
    assert flag_labels("split_compound;below_floor") == "小区被拆分、户数低于下限"
    assert flag_labels("split_compound", "en") == "Compound split between grids"
    assert flag_labels("no_households", "both") == "无住户 No households"
    assert flag_labels("") == "" and flag_labels(None) == "" and flag_labels(float("nan")) == ""
    assert flag_labels("something_new") == "something_new"
    with pytest.raises(gridmap.InputError):
        flag_labels("unbalanced", "fr")


def test_web_page_uses_the_same_flag_labels():
    from api import i18n

    assert i18n.FLAG_LABELS is FLAG_LABELS
    assert i18n.page_strings("zh")["flag_labels"]["split_compound"] == "小区被拆分"


# --------------------------------------------------------------------------- wall maps
def test_wall_map_has_every_chinese_glyph(plan, tmp_path):
    from gridmap.export import _cjk_font

    if _cjk_font() is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    flagged = plan.grids[plan.grids["flags"].fillna("").astype(str) != ""]
    assert len(flagged)
    code = flagged["grid_code"].iloc[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = grid_sheet(plan, code)
        fig.canvas.draw()  # glyphs are looked up when the text is drawn
        path = grid_sheet(plan, code, tmp_path / f"{code}.png", dpi=60)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:3]
    texts = [t.get_text() for t in fig.texts]
    flag_line = next(t for t in texts if t.startswith("标记"))
    assert flag_labels(flagged["flags"].iloc[0]) in flag_line
    assert not re.search(r"[a-z]+_[a-z]+", flag_line)  # no raw flag code
    assert path.stat().st_size > 10_000


# --------------------------------------------------------------------------- colours
RESERVED = {c.lower() for k, c in FLOOD_PALETTE.items() if k != "none"}


def _hue_reserved(colour: str) -> bool:
    """Red, orange, yellow or blue to the eye (saturated, hue in those bands)."""
    import colorsys

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    hue = h * 360
    if s < 0.35 or light > 0.85 or light < 0.15:
        return False
    return hue < 50 or hue > 345 or 50 <= hue < 65 or 195 <= hue < 250


def test_plan_map_keeps_flood_colours_for_flood(plan):
    assert not [c for c in PALETTE if c.lower() in RESERVED or _hue_reserved(c)]
    assert not _hue_reserved(FLAGGED_COLOUR)
    page = plan_map(plan).get_root().render()
    assert "#c00000" not in page and FLAGGED_COLOUR in page
    # every layer has a legend entry
    for text in ("有标记的网格", "社区边界", "楼栋", "弱估计", "标注"):
        assert text in page, text


def test_evacuation_colours_avoid_flood_grades():
    from gridmap.evacuation.outputs import FLOODED_ROAD_COLOUR, REASON_COLOURS, WAVE_COLOURS

    for c in [*WAVE_COLOURS, FLOODED_ROAD_COLOUR, *REASON_COLOURS.values()]:
        assert c.lower() not in RESERVED and not _hue_reserved(c), c


def test_flood_depth_overlay_is_not_a_grade_colour():
    from gridmap.flood import DEPTH_RAMP

    for c in DEPTH_RAMP:
        assert c.lower() not in RESERVED and not _hue_reserved(c), c


def test_wall_map_without_a_cjk_font_warns_and_draws_english(plan, monkeypatch):
    from gridmap import export

    export._cjk_font.cache_clear()
    monkeypatch.setattr(export, "_has_glyphs", lambda fname, text: False)
    try:
        with pytest.warns(UserWarning, match="fonts-noto-cjk"):
            fig = grid_sheet(plan, plan.grids["grid_code"].iloc[0])
        texts = " ".join(t.get_text() for t in fig.texts)
        assert "Grid" in texts and not re.search(r"[\u4e00-\u9fff]", texts)
    finally:
        export._cjk_font.cache_clear()

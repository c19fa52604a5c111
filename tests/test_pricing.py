"""Pure pricing: the table's worked examples and the tick conversion."""

import pytest

from grok_nb.api import pricing


def test_contract_examples():
    # 10 s 720p image→video = 0.002 + 10×0.07; a 6 s 480p edit = 6×0.05 + 6×0.01
    assert pricing.estimate("generate", model="grok-imagine-video", duration=10, resolution="720p",
                            n_images=1).usd == pytest.approx(0.702)
    edit = pricing.estimate("edit", model="grok-imagine-video", duration=6, resolution="480p", input_duration=6)
    assert edit.usd == pytest.approx(0.36) and edit.exact


def test_assumptions_are_flagged():
    ext = pricing.estimate("extend", model="grok-imagine-video", duration=4, resolution="480p", input_duration=6)
    assert ext.usd == pytest.approx(0.5) and not ext.exact
    assert "extension" in str(ext)
    hd = pricing.estimate("generate", model="grok-imagine-video-1.5", duration=5, resolution="1080p")
    assert hd.usd == pytest.approx(5 * 0.25) and not hd.exact and "unofficial" in str(hd)


def test_ticks_round_trip():
    assert pricing.usd_from_ticks(3_000_000_000) == pytest.approx(0.3)
    assert pricing.ticks_from_usd(0.702) == 7_020_000_000
    assert pricing.usd_from_ticks(None) is None and pricing.usd_from_ticks("junk") is None


def test_table_has_its_date_and_both_models():
    assert pricing.PRICES_AS_OF
    assert set(pricing.PRICE_TABLE) == {"grok-imagine-video", "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite"}
    with pytest.raises(ValueError):
        pricing.estimate("remix", model="grok-imagine-video", duration=1, resolution="480p")

"""Pure pricing: the table's worked examples and the tick conversion."""

import pytest

from grok_nb.api import pricing


def test_contract_examples():
    # 10 s 720p image→video = 0.002 + 10×0.07; a 6 s 480p edit = 6×0.05 + 6×0.01
    assert pricing.estimate("generate", model="grok-imagine-video", duration=10, resolution="720p",
                            n_images=1).usd == pytest.approx(0.702)
    edit = pricing.estimate("edit", model="grok-imagine-video", duration=6, resolution="480p", input_duration=6)
    assert edit.usd == pytest.approx(0.36) and edit.exact


def test_extensions_are_an_estimate_with_the_input_seconds_at_the_video_rate():
    ext = pricing.estimate("extend", model="grok-imagine-video", duration=4, resolution="480p", input_duration=6)
    assert ext.usd == pytest.approx(4 * 0.05 + 6 * 0.01) and not ext.exact
    assert "extension" in str(ext) and "estimate" in str(ext)
    # the contract's example: 6 s added to an 8 s 480p video ≈ 6×0.05 + 8×0.01 = $0.38
    assert pricing.estimate("extend", model="grok-imagine-video", duration=6, resolution="480p",
                            input_duration=8).usd == pytest.approx(0.38)


def test_prices_of_2026_09_29_are_all_official():
    assert pricing.PRICES_AS_OF == "2026-09-29"
    offered = [p for items in pricing.PRICES.values() for p in items.values() if p.usd is not None]
    assert offered and all(p.official and p.as_of == "2026-09-29" for p in offered)
    hd = pricing.estimate("generate", model="grok-imagine-video-1.5", duration=5, resolution="1080p")
    assert hd.usd == pytest.approx(5 * 0.25) and hd.exact
    lite = pricing.estimate("generate", model="grok-imagine-video-1.5-lite", duration=10, resolution="1080p",
                            n_images=1)
    assert lite.usd == pytest.approx(10 * 0.14 + 0.01) and lite.exact
    # the contract's examples
    assert pricing.estimate("generate", model="grok-imagine-video", duration=10, resolution="720p",
                            n_images=1).usd == pytest.approx(0.702)
    assert pricing.estimate("edit", model="grok-imagine-video", duration=6, resolution="480p",
                            input_duration=6).usd == pytest.approx(0.36)


def test_ticks_round_trip():
    assert pricing.usd_from_ticks(3_000_000_000) == pytest.approx(0.3)
    assert pricing.ticks_from_usd(0.702) == 7_020_000_000
    assert pricing.usd_from_ticks(None) is None and pricing.usd_from_ticks("junk") is None


def test_table_has_its_date_and_both_models():
    assert pricing.PRICES_AS_OF
    assert set(pricing.PRICE_TABLE) == {"grok-imagine-video", "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite"}
    with pytest.raises(ValueError):
        pricing.estimate("remix", model="grok-imagine-video", duration=1, resolution="480p")

"""Every language has exactly the strings of en.json, with the same {placeholders}.

English (translations/en.json) is the source. A key added there without its translations,
a stale key, or a translated string that drops or renames a placeholder fails here; the last
test loads every language through Home Assistant's own translation cache, which discards a
string whose placeholders differ from English.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
import string
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations
import pytest

from custom_components.circle.const import DOMAIN
from tests.test_hassfest import STRINGS_SCHEMA

TRANSLATIONS = (
    Path(__file__).resolve().parents[1] / "custom_components/circle/translations"
)
LANGUAGES = ("de", "es", "fr", "nl", "pt")


def _load(language: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TRANSLATIONS / f"{language}.json").read_text())
    return data


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _placeholders(text: str) -> set[str]:
    return {
        name for _, name, _, _ in string.Formatter().parse(text) if name is not None
    }


def parity_errors(source: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """What `other` lacks, has in excess, or spells with other placeholders than `source`."""
    en, tr = _leaves(source), _leaves(other)
    errors = [f"missing {key}" for key in sorted(en.keys() - tr.keys())]
    errors += [f"not in en.json: {key}" for key in sorted(tr.keys() - en.keys())]
    for key in sorted(en.keys() & tr.keys()):
        if not isinstance(tr[key], str) or not tr[key].strip():
            errors.append(f"empty {key}")
        elif _placeholders(en[key]) != _placeholders(tr[key]):
            errors.append(
                f"{key}: placeholders {_placeholders(tr[key])} != {_placeholders(en[key])}"
            )
    return errors


def test_the_languages_are_there() -> None:
    """English and the five translations, nothing else."""
    assert {p.stem for p in TRANSLATIONS.glob("*.json")} == {"en", *LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_has_exactly_the_english_keys(language: str) -> None:
    """Same keys, same placeholders, valid for hassfest's strings schema."""
    errors = parity_errors(_load("en"), _load(language))
    assert not errors, f"{language}.json: {errors}"
    STRINGS_SCHEMA(_load(language))


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_is_translated(language: str) -> None:
    """Most strings differ from English (names like "Origin" may stay the same)."""
    en, tr = _leaves(_load("en")), _leaves(_load(language))
    same = [key for key, text in en.items() if tr.get(key) == text]
    assert len(same) <= len(en) // 10, f"{language}: untranslated {same}"


def test_parity_check_catches_mistakes() -> None:
    """A missing key, an extra key, an empty string and a renamed placeholder are found."""
    source = {"a": {"b": "Hello {name}", "c": "x"}, "d": "y"}
    other = {"a": {"b": "Hallo {nom}", "c": ""}, "e": "z"}
    assert parity_errors(source, other) == [
        "missing d",
        "not in en.json: e",
        "a.b: placeholders {'nom'} != {'name'}",
        "empty a.c",
    ]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_home_assistant_loads_every_string(
    hass: HomeAssistant, language: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Home Assistant's translation cache keeps every string (none dropped as invalid)."""
    caplog.set_level(logging.ERROR, "homeassistant.helpers.translation")
    expected = _leaves(_load(language))
    for category in {key.split(".", 1)[0] for key in expected}:
        loaded = await async_get_translations(hass, language, category, [DOMAIN])
        wanted = {
            f"component.{DOMAIN}.{key}": text
            for key, text in expected.items()
            if key.startswith(f"{category}.")
        }
        assert loaded == wanted, category
    assert not caplog.records, caplog.text

"""Every language file translates every English string, the way Home Assistant loads them.

English is the source: ``strings.json``, shipped as ``translations/en.json`` with any
``[%key:...%]`` reference resolved (HA's ``script.translations develop`` does that for core;
custom integrations must ship the final text). ``tests/test_metadata.py`` already checks that
``strings.json`` itself passes hassfest's key rule and that every flow error, action and selector
option of the code has an English string; this module checks the other languages against English.
"""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path
from typing import Any

import homeassistant
import pytest
import yaml
from homeassistant.generated.languages import LANGUAGES as HA_LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "prepaid_meter"
TRANSLATIONS = INTEGRATION / "translations"
DOMAIN = INTEGRATION.name
OTHER_LANGUAGES = sorted(path.stem for path in TRANSLATIONS.glob("*.json") if path.stem != "en")

# Values that may read the same as in English: product and model names, protocol and file
# formats, numbers, and the few words German borrows unchanged. Everything else must be translated.
SAME_AS_ENGLISH = {
    "{name}",
    "Eastron SDM120",
    "Eastron SDM230",
    "Eastron SDM630",
    "Chint DDSU666",
    "Hiking DDS238-2 ZN/S",
    "JSON",
    "CSV",
    "Token",
    "Host",
    "Port",
    "Name",
    "Status",
    "Format",
}
NUMBER = re.compile(r"\d+")

# The rules of hassfest's script/hassfest/translations.py:
RE_TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
RE_REFERENCE = re.compile(r"\[%key:([a-z0-9_]+(?:::[a-z0-9-_]+)+)%\]")
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")
RE_HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)
RE_URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)
# Where hassfest runs translation_key_validator (or the stricter cv.slug) on a key; "*" is any key.
KEY_RULES = [
    ("exceptions", "*"),
    ("config_subentries", "*"),
    ("selector", "*", "options", "*"),
    ("entity", "*"),
    ("entity", "*", "*"),
    ("entity", "*", "*", "state", "*"),
    ("entity", "*", "*", "state_attributes", "*"),
    ("entity", "*", "*", "state_attributes", "*", "state", "*"),
    ("services", "*"),
    ("services", "*", "fields", "*"),
]
# Where hassfest forbids placeholders (entity states and attribute names).
NO_PLACEHOLDERS = [
    ("entity", "*", "*", "state", "*"),
    ("entity", "*", "*", "state_attributes", "*", "name"),
    ("entity", "*", "*", "state_attributes", "*", "state", "*"),
]

KeyPath = tuple[str, ...]


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _flatten(tree: dict[str, Any], prefix: KeyPath = ()) -> dict[KeyPath, str]:
    """Every string leaf by its key path."""
    leaves: dict[KeyPath, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            leaves |= _flatten(value, (*prefix, key))
        else:
            assert isinstance(value, str), f"{'.'.join((*prefix, key))} is not a string"
            leaves[(*prefix, key)] = value
    return leaves


def _matches(path: KeyPath, pattern: KeyPath) -> bool:
    if len(path) != len(pattern):
        return False
    return all(part in ("*", key) for key, part in zip(path, pattern, strict=True))


def _key_paths(tree: dict[str, Any], prefix: KeyPath = ()) -> set[KeyPath]:
    """Every key path, inner dictionaries included."""
    found = set()
    for key, value in tree.items():
        found.add((*prefix, key))
        if isinstance(value, dict):
            found |= _key_paths(value, (*prefix, key))
    return found


def _placeholders(value: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}


def _references() -> dict[str, str]:
    """What a ``[%key:...%]`` may point to: HA's common strings and this integration's own."""
    found: dict[str, str] = {}
    ha_strings = Path(homeassistant.__file__).parent / "strings.json"
    for path, value in _flatten(_json(ha_strings).get("common", {}), ("common",)).items():
        found["::".join(path)] = value
    own = _json(INTEGRATION / "strings.json")
    for path, value in _flatten(own, ("component", DOMAIN)).items():
        found["::".join(path)] = value
    return found


def _resolve(value: str, references: dict[str, str]) -> str:
    """Substitute references like HA's script/translations/develop.py substitute_reference."""
    for key in RE_REFERENCE.findall(value):
        if key not in references:
            component = re.fullmatch(r"component::(\w+)::(.+)", key)
            assert component, f"unknown translation reference {key}"
            other = Path(homeassistant.__file__).parent / "components" / component[1]
            flat = _flatten(_json(other / "translations" / "en.json"))
            references[key] = flat[tuple(component[2].split("::"))]
        value = value.replace(f"[%key:{key}%]", _resolve(references[key], references))
    return value


def _resolved_english() -> dict[KeyPath, str]:
    references = _references()
    strings = _flatten(_json(INTEGRATION / "strings.json"))
    return {path: _resolve(value, references) for path, value in strings.items()}


def _untranslated(english: dict[str, Any], other: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Key paths English has and the other language lacks, and the reverse."""
    ours, theirs = _key_paths(english), _key_paths(other)
    return {".".join(p) for p in ours - theirs}, {".".join(p) for p in theirs - ours}


@pytest.fixture(scope="module")
def english() -> dict[str, Any]:
    """The source: a key added to strings.json fails every language until it is translated."""
    return _json(INTEGRATION / "strings.json")


def test_languages_are_home_assistant_codes() -> None:
    """The file names must be codes HA's frontend asks for (zh-Hans, not zh or zh-CN)."""
    assert {"de", "zh-Hans"} <= set(OTHER_LANGUAGES)
    assert set(OTHER_LANGUAGES) <= set(HA_LANGUAGES)


def test_english_is_strings_with_references_resolved() -> None:
    """en.json is strings.json with every [%key:...%] resolved.

    Today strings.json uses no references, so this is the verbatim copy that
    test_metadata.test_translations_match_strings checks; once a reference is added there,
    that test must give way to this one.
    """
    english = _flatten(_json(TRANSLATIONS / "en.json"))
    assert english == _resolved_english()


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_same_keys_as_english(language: str, english: dict[str, Any]) -> None:
    missing, extra = _untranslated(english, _json(TRANSLATIONS / f"{language}.json"))
    assert not missing, f"{language}.json lacks (translate them): {sorted(missing)}"
    assert not extra, f"{language}.json has keys English does not: {sorted(extra)}"


def test_a_new_english_key_is_reported_as_untranslated(english: dict[str, Any]) -> None:
    """The check above fails when strings.json (hence en.json) gains a key nobody translated."""
    grown = copy.deepcopy(english)
    grown["exceptions"]["brand_new"] = {"message": "Something new."}
    grown["entity"]["sensor"]["balance"]["state"] = {"low": "Low"}
    translated = _json(TRANSLATIONS / "de.json")
    missing, extra = _untranslated(grown, translated)
    assert missing == {
        "exceptions.brand_new",
        "exceptions.brand_new.message",
        "entity.sensor.balance.state",
        "entity.sensor.balance.state.low",
    }
    assert extra == set()
    assert _untranslated(translated, grown)[1] == missing


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_placeholders_match_english(language: str) -> None:
    english = _resolved_english()
    translated = _flatten(_json(TRANSLATIONS / f"{language}.json"))
    wrong = {
        ".".join(path): (sorted(_placeholders(english[path])), sorted(_placeholders(value)))
        for path, value in translated.items()
        if path in english and _placeholders(value) != _placeholders(english[path])
    }
    assert wrong == {}, "key: (English placeholders, translated placeholders)"


@pytest.mark.parametrize("language", ["en", *OTHER_LANGUAGES])
def test_values_are_final_text_hassfest_accepts(language: str) -> None:
    """Not empty, no unresolved reference, and hassfest's value rules."""
    for path, value in _flatten(_json(TRANSLATIONS / f"{language}.json")).items():
        where = f"{language}: {'.'.join(path)}"
        assert value.strip(), f"{where} is empty"
        assert value == value.strip(), f"{where} has leading or trailing spaces"
        assert "[%key:" not in value, f"{where} must hold the text, not a reference"
        assert not RE_HTML.search(value), f"{where} contains HTML"
        assert not RE_URL.search(value), f"{where} contains a URL; use a placeholder"
        assert not RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(value), f"{where}: '{{x}}' breaks"
        for field in _placeholders(value):
            assert field.isidentifier(), f"{where}: placeholder {{{field}}}"
        if any(_matches(path, pattern) for pattern in NO_PLACEHOLDERS):
            assert not _placeholders(value), f"{where} may not have placeholders"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_nothing_left_in_english(language: str) -> None:
    english = _resolved_english()
    translated = _flatten(_json(TRANSLATIONS / f"{language}.json"))
    same = {
        ".".join(path): value
        for path, value in translated.items()
        if english.get(path) == value
        and value not in SAME_AS_ENGLISH
        and not NUMBER.fullmatch(value)
    }
    assert same == {}, f"{language}.json still has English text (or extend SAME_AS_ENGLISH)"


def test_same_as_english_list_is_current() -> None:
    english = set(_resolved_english().values())
    assert english >= SAME_AS_ENGLISH, "drop allow-list entries English no longer has"


@pytest.mark.parametrize("language", ["en", *OTHER_LANGUAGES])
def test_keys_pass_hassfest(language: str) -> None:
    """hassfest's translation_key_validator, where hassfest applies it, in every language."""
    paths = _key_paths(_json(TRANSLATIONS / f"{language}.json"))
    checked = [path for path in paths if any(_matches(path, rule) for rule in KEY_RULES)]
    assert any(path[:2] == ("selector", "parity") for path in checked), "rules must match"
    bad = [".".join(path) for path in checked if not RE_TRANSLATION_KEY.match(path[-1])]
    assert bad == [], "hassfest wants [a-z0-9-_]+, no leading, trailing or doubled - or _"


def test_only_translation_files_carry_language() -> None:
    """services.yaml and icons.json are language-neutral, so they need no per-language files.

    Action and field names come from the translations' "services" section, icons are mdi
    names; HA has no translated variants of either file.
    """
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    for action, spec in services.items():
        assert not {"name", "description"} & set(spec), action
        for field, field_spec in spec.get("fields", {}).items():
            assert not {"name", "description"} & set(field_spec), f"{action}.{field}"
    icons = _flatten(_json(INTEGRATION / "icons.json"))
    assert all(value.startswith("mdi:") for value in icons.values())
    assert not list(INTEGRATION.glob("services.*.yaml")), "HA reads no per-language services"
    assert not list(INTEGRATION.glob("icons.*.json")), "HA reads no per-language icons"

"""Language codes, language names and event slugs (contract sections 2 and 4.5).

Owns the ISO 639-1 allow-list VoxBento validates booth languages against (two lower-case letters, plus
the pseudo-language ``floor`` for a room's floor audio), the English names the admin pages show, the
event-slug rule, and the full language list that VoxBento's admin pages rebuild and sort from pycountry
on every request (contract 4.5). pycountry is not a dependency here, so the table is written out.
"""

from __future__ import annotations

import re

# Contract 2: a room's floor audio uses this pseudo language code (booth id `{slug}-{room}-floor`).
FLOOR = "floor"
FLOOR_NAME = "Floor"

# Contract 2: ISO 639-1 (the 183 two-letter codes pycountry knows), English names as pycountry spells them.
ISO_639_1: dict[str, str] = {
    "aa": "Afar", "ab": "Abkhazian", "ae": "Avestan", "af": "Afrikaans", "ak": "Akan", "am": "Amharic",
    "an": "Aragonese", "ar": "Arabic", "as": "Assamese", "av": "Avaric", "ay": "Aymara", "az": "Azerbaijani",
    "ba": "Bashkir", "be": "Belarusian", "bg": "Bulgarian", "bi": "Bislama", "bm": "Bambara", "bn": "Bengali",
    "bo": "Tibetan", "br": "Breton", "bs": "Bosnian", "ca": "Catalan", "ce": "Chechen", "ch": "Chamorro",
    "co": "Corsican", "cr": "Cree", "cs": "Czech", "cu": "Church Slavic", "cv": "Chuvash", "cy": "Welsh",
    "da": "Danish", "de": "German", "dv": "Dhivehi", "dz": "Dzongkha", "ee": "Ewe", "el": "Modern Greek (1453-)",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "ff": "Fulah", "fi": "Finnish", "fj": "Fijian", "fo": "Faroese", "fr": "French", "fy": "Western Frisian",
    "ga": "Irish", "gd": "Scottish Gaelic", "gl": "Galician", "gn": "Guarani", "gu": "Gujarati", "gv": "Manx",
    "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "ho": "Hiri Motu", "hr": "Croatian", "ht": "Haitian",
    "hu": "Hungarian", "hy": "Armenian", "hz": "Herero", "ia": "Interlingua (International Auxiliary Language Association)",
    "id": "Indonesian", "ie": "Interlingue", "ig": "Igbo", "ii": "Sichuan Yi", "ik": "Inupiaq", "io": "Ido",
    "is": "Icelandic", "it": "Italian", "iu": "Inuktitut", "ja": "Japanese", "jv": "Javanese", "ka": "Georgian",
    "kg": "Kongo", "ki": "Kikuyu", "kj": "Kuanyama", "kk": "Kazakh", "kl": "Kalaallisut", "km": "Khmer",
    "kn": "Kannada", "ko": "Korean", "kr": "Kanuri", "ks": "Kashmiri", "ku": "Kurdish", "kv": "Komi",
    "kw": "Cornish", "ky": "Kirghiz", "la": "Latin", "lb": "Luxembourgish", "lg": "Ganda", "li": "Limburgan",
    "ln": "Lingala", "lo": "Lao", "lt": "Lithuanian", "lu": "Luba-Katanga", "lv": "Latvian", "mg": "Malagasy",
    "mh": "Marshallese", "mi": "Maori", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi",
    "ms": "Malay (macrolanguage)", "mt": "Maltese", "my": "Burmese", "na": "Nauru", "nb": "Norwegian Bokmål",
    "nd": "North Ndebele", "ne": "Nepali (macrolanguage)", "ng": "Ndonga", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "nr": "South Ndebele", "nv": "Navajo", "ny": "Nyanja", "oc": "Occitan (post 1500)",
    "oj": "Ojibwa", "om": "Oromo", "or": "Oriya (macrolanguage)", "os": "Ossetian", "pa": "Panjabi", "pi": "Pali",
    "pl": "Polish", "ps": "Pushto", "pt": "Portuguese", "qu": "Quechua", "rm": "Romansh", "rn": "Rundi",
    "ro": "Romanian", "ru": "Russian", "rw": "Kinyarwanda", "sa": "Sanskrit", "sc": "Sardinian", "sd": "Sindhi",
    "se": "Northern Sami", "sg": "Sango", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sm": "Samoan",
    "sn": "Shona", "so": "Somali", "sq": "Albanian", "sr": "Serbian", "ss": "Swati", "st": "Southern Sotho",
    "su": "Sundanese", "sv": "Swedish", "sw": "Swahili (macrolanguage)", "ta": "Tamil", "te": "Telugu", "tg": "Tajik",
    "th": "Thai", "ti": "Tigrinya", "tk": "Turkmen", "tl": "Tagalog", "tn": "Tswana", "to": "Tonga (Tonga Islands)",
    "tr": "Turkish", "ts": "Tsonga", "tt": "Tatar", "tw": "Twi", "ty": "Tahitian", "ug": "Uighur", "uk": "Ukrainian",
    "ur": "Urdu", "uz": "Uzbek", "ve": "Venda", "vi": "Vietnamese", "vo": "Volapük", "wa": "Walloon", "wo": "Wolof",
    "xh": "Xhosa", "yi": "Yiddish", "yo": "Yoruba", "za": "Zhuang", "zh": "Chinese", "zu": "Zulu",
}

# Contract 2: event slugs are lower-case words joined by single hyphens, at most 64 chars.
SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
SLUG_RE = re.compile(rf"^{SLUG_PATTERN}$")
SLUG_MAX_LEN = 64
# Contract 2: a booth's language is two lower-case letters (checked against ISO_639_1 by the server) or `floor`.
LANGUAGE_CODE_PATTERN = r"[a-z]{2}"
BOOTH_LANGUAGE_PATTERN = rf"(?:{LANGUAGE_CODE_PATTERN}|{FLOOR})"
_LANGUAGE_CODE_RE = re.compile(rf"^{LANGUAGE_CODE_PATTERN}$")
_BOOTH_LANGUAGE_RE = re.compile(rf"^{BOOTH_LANGUAGE_PATTERN}$")


def is_valid_language_code(code: str, allow_floor: bool = True) -> bool:
    """Contract 2: two lower-case letters from the ISO 639-1 allow-list, or ``floor``."""
    if allow_floor and code == FLOOR:
        return True
    return bool(_LANGUAGE_CODE_RE.match(code)) and code in ISO_639_1


def has_language_code_shape(code: str) -> bool:
    """Contract 2: two lower-case letters or ``floor``, without the allow-list (a client leaves that to the server)."""
    return bool(_BOOTH_LANGUAGE_RE.match(code))


def language_name(code: str) -> str:
    """English name of a valid code; the upper-cased code for anything else (VoxBento's fallback)."""
    if code == FLOOR:
        return FLOOR_NAME
    return ISO_639_1.get(code, code.upper())


def is_valid_slug(slug: str) -> bool:
    """Contract 2: ``^[a-z0-9]+(?:-[a-z0-9]+)*$`` and at most 64 characters."""
    return len(slug) <= SLUG_MAX_LEN and bool(SLUG_RE.match(slug))


def slugify(display_name: str) -> str:
    """Contract 4.1: the wizard derives the slug from the display name when none is given."""
    slug = re.sub(r"[^a-z0-9]+", "-", display_name.strip().lower()).strip("-")
    return slug[:SLUG_MAX_LEN].rstrip("-")


def language_choices() -> list[tuple[str, str]]:
    """Contract 4.5: the full (code, name) list sorted by name, rebuilt on every call like VoxBento's
    per-request pycountry walk; callers must not cache it, the cost is part of what the page measures."""
    return sorted(((code, name) for code, name in ISO_639_1.items()), key=lambda item: item[1].lower())

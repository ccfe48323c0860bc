"""Names that a small NER model misses, found by the words around them, and the names it invents.

A name is certain from its context: after a title ("ms. Shouko", "Dr Patel", "Herr Müller", "Mme Dubois"),
after an introduction ("my name is", "I'm", "this is", "je m'appelle"), after a greeting ("Hi John,") and in a
signature ("Best, John"). These find names in any case, also those the model tags as an organisation or a
place, and they score above the model so they win an overlap.

The other way round, the model tags capitalised common words, sentence starts and acronyms as persons
("No PII here"): ``plausible_person`` rejects a one-word person that is a function word, a greeting, a
weekday, a month, a title alone or an acronym.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from airflow_aisec.pii.recognizers.common import Found, word_set, words

PERSON = "PERSON"

# Titles, matched in any case.
TITLES = (
    "mr mr. mrs mrs. ms ms. mx mx. dr dr. prof prof. herr frau mme mme. mlle mlle. monsieur madame "
    "señor señora sr. sra. srta. doña dott. dott.ssa signora shri smt smt. sri kumari"
)
# Titles that are also common words ("I miss you", "Fr." for Friday): capitalised, with a capitalised name.
CAPITALISED_TITLES = "Miss Sir Madam Dame Lady Lord Don Sig. Signor Hr. Fr. Sr Sra M."
# Introductions after which a name follows, in any case.
STRONG_INTRODUCTIONS = (
    "my_name_is my_name's name: full_name: signed: mein_name_ist ich_heiße ich_heisse je_m'appelle "
    "mon_nom_est me_llamo mi_nombre_es mi_chiamo il_mio_nome_è meu_nome_é chamo-me"
)
# Sign-offs: the name follows after a comma or a line break and ends its line.
SIGN_OFFS = (
    "best best_regards kind_regards regards warm_regards many_thanks thanks thank_you sincerely cheers "
    "yours cordially viele_grüße mit_freundlichen_grüßen liebe_grüße grüße gruß lg cordialement "
    "bien_à_vous merci saludos atentamente un_saludo gracias cordiali_saluti saluti grazie "
    "atenciosamente obrigado obrigada abraços danke"
)
# Greetings: the name follows; in a lower-case text it must end with punctuation ("hi john,").
GREETINGS = (
    "good_morning good_afternoon good_evening guten_morgen guten_tag buongiorno buenos_días bonsoir "
    "hi hello hey dear hallo liebe lieber bonjour salut cher chère hola estimado estimada ciao caro cara "
    "gentile olá prezado prezada"
)
# Introductions as often followed by an adjective ("I'm tired"): the name must be capitalised.
WEAK_INTRODUCTIONS = (
    "i'm i_am this_is it's it_is here_is ich_bin je_suis c'est soy sono sou ask_for contact colleague"
)
# Words that follow an introduction and are not names.
NOT_NAMES = word_set(
    "a an the and or of in on at to for from by with is are was be been it this that there here all any "
    "some no not yes so but if then again also just very too now today tomorrow yesterday please thanks "
    "thank you we they he she i me us them everyone everybody team teams folks guys people friends "
    "colleagues support sir madam madame monsieur customer customers client sorry sure ok okay fine good "
    "great glad happy back away available calling writing home out still afraid new interested going "
    "looking trying waiting concerned unable able only both morning afternoon evening night day week "
    "month year regards best kind warm das die der ein eine und le la les un une et el los las y il lo "
    "gli mr mrs ms miss mx dr prof herr frau mme mlle señor señora sr sra srta "
    "details info more link links docs nothing anything everything something click see note update"
)
# One-word persons the model invents at sentence starts and in greetings.
NOT_ONE_WORD_PERSONS = NOT_NAMES | word_set(
    "hi hello hey dear hallo bonjour hola ciao cheers pm am pii monday tuesday wednesday thursday friday "
    "saturday sunday january february march april may june july august september october november "
    "december"
)

_NAME_WORD = r"(?:[A-ZÀ-ÖØ-Þ][\w'’\-]*[^\W\d_]|[A-ZÀ-ÖØ-Þ]\.)"
_LOWER_WORD = r"[^\W\d_][\w'’\-]*[^\W\d_]"
_PARTICLE = (
    r"(?:van der|van den|van de|von der|de la|del|della|van|von|de|da|di|du|des|dos|das|le|la|al|bin|ten|ter)"
)
_NAMES = (
    rf"(?:{_NAME_WORD}|{_LOWER_WORD})(?:[ \t]+(?:{_PARTICLE}[ \t]+)?(?:{_NAME_WORD}|{_LOWER_WORD})){{0,2}}"
)
_CAPITALISED_NAMES = rf"(?:{_NAME_WORD})(?:[ \t]+(?:{_PARTICLE}[ \t]+)?(?:{_NAME_WORD})){{0,2}}"
_LINE_END = r"(?=[ \t]*(?:[,.!:;)\n]|$))"

_TITLED = re.compile(
    rf"(?<![\w])(?:(?:(?i:{words(TITLES)})|{words(CAPITALISED_TITLES)})(?<=[\w.])\s+)+"
    rf"(?P<name>{_CAPITALISED_NAMES})"
)
_TITLED_LOWER = re.compile(
    rf"(?<![\w])(?:{words(TITLES)})(?<=[\w.])\s+(?P<name>{_LOWER_WORD}(?:\s+{_LOWER_WORD})?)"
)
_STRONG = re.compile(rf"(?<![\w])(?i:{words(STRONG_INTRODUCTIONS)})[ \t]*[,:]?[ \t]*(?P<name>{_NAMES})")
_SIGN_OFF = re.compile(
    rf"(?<![\w])(?i:{words(SIGN_OFFS)})[ \t]*(?:[,!.][ \t]*\n?|\n)[ \t]*(?P<name>{_NAMES}){_LINE_END}"
)
_GREETING = re.compile(rf"(?<![\w])(?i:{words(GREETINGS)})[ \t]+(?P<name>{_CAPITALISED_NAMES})")
_GREETING_LOWER = re.compile(rf"(?<![\w])(?:{words(GREETINGS)})[ \t]+(?P<name>{_NAMES}){_LINE_END}")
_WEAK = re.compile(rf"(?<![\w])(?i:{words(WEAK_INTRODUCTIONS)})[ \t]+(?P<name>{_CAPITALISED_NAMES})")
# Form, header and record labels: "From: Marcus Humphries", "Account holder: ...", '"name": "..."',
# "recipient=...", "Name ........ ...". The label may be quoted (JSON, logs) and the name too.
FIELD_LABELS = (
    "name full_name first_name last_name given_name surname family_name recipient sender holder "
    "account_holder card_holder cardholder contact emergency_contact customer client patient employee "
    "user owner from to attn attention c/o cc signed nom prénom vorname nachname empfänger absender "
    "kontoinhaber titular nombre apellido destinatario"
)
_LABEL = re.compile(
    rf"(?<![\w])[\"']?(?i:{words(FIELD_LABELS)})[\"']?"
    rf"(?:[ \t]*[:=][ \t]*|[ \t]*\.{{2,}}[ \t]*|(?<=[A-Z]{{4}})[ \t]+)[\"']?"
    rf"(?P<name>{_CAPITALISED_NAMES})(?=[\"']|[ \t]*(?:[,.!:;)\n(]|$))"
)
# A signature block: a line holding only a name, after a blank line or a "--" line.
_SIGNATURE_LINE = re.compile(
    rf"\n[ \t]*\n(?:[ \t]*--[ \t]*\n)?[ \t]*(?P<name>{_CAPITALISED_NAMES})[ \t]*(?=\n|$)"
)
# A name introducing itself in a chat: "Swan here, new number ...".
_HERE = re.compile(rf"^[ \t]*(?P<name>{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)[ \t]+here[ \t]*[,!:\-]")
# Owners: "the card belongs to yoan drolet", "on behalf of Anna Weber".
OWNERS = "belongs_to belonging_to owned_by on_behalf_of signed_by cardholder account_holder"
_OWNER = re.compile(rf"(?<![\w])(?i:{words(OWNERS)})[ \t]+(?P<name>{_CAPITALISED_NAMES})")
_OWNER_LOWER = re.compile(rf"(?<![\w])(?:{words(OWNERS)})[ \t]+(?P<name>{_NAMES}){_LINE_END}")
# A name alone on the line above a street address.
_ADDRESSEE = re.compile(rf"(?:^|(?<=\n))[ \t]*(?:(?i:{words(TITLES)})[ \t]+)?(?P<name>{_NAMES})[ \t]*\n")
# A name doing what callers and writers do: "Maureen Mason called about ...", "note: anita balan reports".
ACTIONS = (
    "called calls calling phoned rang wrote writes emailed e-mailed texted says said asked asks reported "
    "reports mentioned requested requests complained complains confirmed confirms replied replies "
    "prefers wants needs would_like is_asking just_called verified left sent"
)
_ACTOR = re.compile(
    rf"(?<![\w])(?P<name>{_NAME_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_NAME_WORD}){{1,2}})"
    rf"(?:[ \t]*\([^()\n]{{1,80}}\))?[ \t]+(?:{words(ACTIONS)})(?![\w])"
)
_ACTOR_LOWER = re.compile(
    rf"(?:^|(?<=[:\n]))[ \t]*(?P<name>{_LOWER_WORD}[ \t]+{_LOWER_WORD})[ \t]+(?:{words(ACTIONS)})(?![\w])"
)
# Two or three capitalised words closing the text after a sentence: a signature ("... block it. Toby Mills").
_CLOSING = re.compile(rf"[.!?][ \t]+(?P<name>{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{1,2}})[ \t]*$")
_ACRONYM = re.compile(r"^[A-Z]{2,5}$")

TITLE_WORDS = word_set(TITLES.replace(".", "") + " " + CAPITALISED_TITLES.lower().replace(".", ""))
_STRONG_PATTERNS = (_STRONG, _SIGN_OFF, _LABEL, _OWNER)

# Above the model's 0.85, so a name in context wins over the model's LOCATION of the same words.
CONTEXT_PERSON_SCORE = 0.9
WEAK_PERSON_SCORE = 0.86


def _trim(name: str, skip_leading: bool = False) -> tuple[int, str]:
    """Where the name starts in ``name`` and the name, which ends before its first word that is not a name
    ("John and Mary" → "John"); ``skip_leading`` skips such words before it ("Customer Anna Weber")."""
    parts = name.split()
    first = 0
    while skip_leading and first < len(parts) and parts[first].lower().strip(".") in NOT_NAMES:
        first += 1
    kept: list[str] = []
    for part in parts[first:]:
        if part.lower().strip(".") in NOT_NAMES:
            break
        kept.append(part)
    if not kept:
        return 0, ""
    return name.index(kept[0], sum(len(p) for p in parts[:first])), " ".join(kept)


def _found(match: re.Match[str], score: float, skip_leading: bool = False) -> Found | None:
    offset, name = _trim(match.group("name"), skip_leading)
    if len(name) < 2:
        return None
    start = match.start("name") + offset
    return Found(PERSON, start, start + len(name), score)


def find_persons(text: str) -> Iterator[Found]:
    """Names after titles, introductions and greetings, and in signatures."""
    patterns = [
        _STRONG,
        _SIGN_OFF,
        _GREETING,
        _WEAK,
        _LABEL,
        _SIGNATURE_LINE,
        _HERE,
        _OWNER,
        _ACTOR,
        _CLOSING,
    ]
    lower = not any(char.isupper() for char in text)
    patterns += [_GREETING_LOWER, _OWNER_LOWER] if lower else [_ACTOR_LOWER]
    yield from _addressees(text, lower)
    yield from _titled(text, lower)
    for pattern in patterns:
        score = CONTEXT_PERSON_SCORE if pattern in _STRONG_PATTERNS else WEAK_PERSON_SCORE
        for match in pattern.finditer(text):
            found = _found(match, score, skip_leading=pattern is _ACTOR)
            if found is not None and pattern is _ACTOR and " " not in text[found.start : found.end]:
                continue  # "The App reports": one word left is no name
            # In a text with capitals, the lower-case actor pattern is for names written in lower case.
            if found is not None and (pattern is not _ACTOR_LOWER or match.group("name").islower()):
                yield found


def _titled(text: str, lower: bool) -> Iterator[Found]:
    """Names after titles; after a title a capitalised word is a name even if it is a word ("Ms. Day")."""
    for match in (_TITLED_LOWER if lower else _TITLED).finditer(text):
        parts = match.group("name").split()
        # "Herr Dr. Stahr": further titles are not the name.
        skip = 0
        while skip < len(parts) - 1 and parts[skip].lower().strip(".") in TITLE_WORDS:
            skip += 1
        kept = parts[skip:]
        if kept and kept[0].lower().strip(".") not in TITLE_WORDS:
            start = match.start("name") + match.group("name").index(kept[0])
            name = " ".join(kept)
            yield Found(PERSON, start, start + len(name), CONTEXT_PERSON_SCORE)


def _addressees(text: str, lower: bool) -> Iterator[Found]:
    """Names on the line above a street address ("Anna Weber\n12 Elm St")."""
    candidates = [m for m in _ADDRESSEE.finditer(text) if lower or m.group("name")[:1].isupper()]
    if not candidates:
        return
    from airflow_aisec.pii.recognizers.addresses import find_addresses

    starts = {found.start for found in find_addresses(text)}
    for match in candidates:
        after = match.end()
        if any(start >= after and not text[after:start].strip() for start in starts):
            found = _found(match, CONTEXT_PERSON_SCORE)
            if found is not None:
                yield found


def plausible_person(value: str) -> bool:
    """Whether an NER person is worth keeping: not a lone function word, greeting, title or acronym."""
    parts = value.split()
    if not parts or any(char.isdigit() or char == "@" for char in value):
        return False
    if len(parts) > 1:
        if len(parts[-1]) == 1:  # "Size M"
            return False
        return any(part.lower().strip(".,") not in NOT_ONE_WORD_PERSONS for part in parts)
    word = parts[0].strip(".,:;!?'’")
    return bool(word) and word.lower() not in NOT_ONE_WORD_PERSONS and not _ACRONYM.match(word)

"""Street addresses: house number, street name and street type, in the orders used across Europe and India.

Four shapes cover most of what people write: "12 Baker Street" (number, name, type: English, India), "12, rue
de la Paix" (number, type, name: French), "Via Roma, 12" / "Calle Mayor 5" (type, name, number: Italian,
Spanish, Portuguese) and "Hauptstraße 5" / "Am Alten Markt 3" (name ending in or followed by a type, then a
number: German, Dutch). A street may be followed by apartment parts and a locality with its postcode on the
same line or the next ones; each is taken into the span. Postcodes alone (a UK postcode, "City, ST 12345",
"75001 Paris", "Jaunpur-560001") are addresses too, scored lower. A text that is only a street address (a
column value) is reported as ``LOCATION``, the entity catalogs declare for address columns.

Names of streets and towns are capitalised; an all-lower-case text is matched on a copy that capitalises
each word except common function words, with the same offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from airflow_aisec.pii.recognizers.common import Found, word_set, words

STREET_ADDRESS = "STREET_ADDRESS"
LOCATION = "LOCATION"

# Street types written after the name (English: USPS and Royal Mail usage; India).
SUFFIX_TYPES = (
    "Street St Str Avenue Ave Av Road Rd Lane Ln Drive Dr Boulevard Blvd Way Court Ct Close Cl Place Pl "
    "Terrace Ter Terr Crescent Cres Square Sq Parkway Pkwy Highway Hwy Circle Cir Trail Trl Row Walk Grove "
    "Gardens Gdns Garden Hill Hills Park Parks Mews Loop Path Pike Plaza Ridge Run View Views Vista Heights "
    "Hts Junction Jct Crossing Estate Estates Falls Field Fields Forest Harbor Harbour Haven Island Isle "
    "Lake Lakes Manor Meadow Meadows Mill Mills Mission Mount Mountain Orchard Pass Point Port Prairie "
    "Ranch Spring Springs Station Summit Union Valley Village Villages Ville Wells Well Alley Annex Arcade "
    "Bayou Beach Bend Bluff Bluffs Bottom Branch Bridge Brook Brooks Burg Burgs Bypass Camp Canyon Cape "
    "Causeway Center Centre Cliff Cliffs Club Common Commons Corner Corners Course Courts Cove Coves Creek "
    "Crest Curve Dale Dam Divide Expressway Expy Extension Ferry Flat Flats Ford Fords Forge Forks Fort "
    "Freeway Fwy Gateway Glen Glens Green Greens Grove Groves Hollow Inlet Islands Key Keys Knoll Knolls "
    "Landing Light Lights Lock Locks Lodge Mall Motorway Neck Oval Overpass Passage Pines Plain Plains "
    "Points Ports Radial Ramp Rapid Rapids Rest Ridges River Shoal Shoals Shore Shores Skyway Spur Spurs "
    "Squares Stravenue Stream Streets Throughway Trace Track Trafficway Tunnel Turnpike Underpass Unions "
    "Valleys Viaduct Wall Ways Wharf Yard Quay Parade Rise Vale Wynd Chase Drove Gate Broadway Esplanade "
    "Route Pine Pines "
    "Marg Nagar Chowk Gali Colony Layout Bagh Ganj Puram Vihar Enclave Sector Zila Peth Wadi Pally"
)
# Street types written before the name (French, Italian, Spanish, Portuguese, Catalan).
PREFIX_TYPES = (
    "rue avenue av. boulevard bd bd. chemin allée impasse place quai route cours passage square voie "
    "faubourg chaussée sentier montée esplanade promenade prom. venelle cour parc cité hameau lieu-dit "
    "résidence rond-point grand_rue grande_rue "
    "via viale piazza piazzale corso strada vicolo largo contrada borgo lungomare "
    "calle avenida av. plaza paseo camino carretera ronda travesía glorieta cañada carrer passeig "
    "rua alameda travessa praça largo rodovia estrada beco ladeira trecho sítio vila"
)
# Street types that end a German or Dutch street name, as its last part ("Hauptstraße") or a word of it.
TRAILING_TYPES = (
    "straße strasse str. weg allee platz gasse ring damm ufer chaussee steig pfad markt hof graben kamp "
    "feld garten park brücke tor wall stieg zeile gürtel promenade "
    "straat laan plein gracht kade singel dijk pad steeg plantsoen"
)
UNIT_WORDS = (
    "Apt Apt. Apartment Suite Ste Ste. Unit Flat Floor Fl Fl. Room Rm Rm. Bldg Bldg. Building Puerta Piso "
    "Appartamento Interno Scala Etage Étage Wohnung Whg. Bte Boîte Studio"
)
# Words kept lower case on the capitalised copy of a lower-case text.
FUNCTION_WORDS = word_set(
    "a an and or the of in on at to for from by with into over under about after before as is are was "
    "were be been it its this that these those my your his her our their me you he she we they i not no "
    "yes so but if then than there here when where what who how all any some more most very can could "
    "will would should may might must do does did have has had get got just also only still again please "
    "thanks thank hi hello dear"
)

_NAME = r"[A-ZÀ-ÖØ-Þ][\w'’.\-]*"
_LINK = r"(?:de|del|de la|de las|de los|da|do|dos|das|di|della|delle|dei|du|des|d'|l'|la|le|les|el|los|las)"
_NUMBER = r"\d{1,5}[A-Za-z]?(?:\s?[-/]\s?\d{1,4}[A-Za-z]?)?"
_UNIT = rf"(?:(?:{words(UNIT_WORDS)})\s*[\w\-]{{1,6}}|\#\s*\w{{1,6}})"

# "12 Baker Street", "80/636, Wable Nagar", "Flat 3, 12 Baker St"
_SUFFIX_SHAPE = (
    rf"(?:(?:{words(UNIT_WORDS)})\s*\w{{1,5}},?\s+)?(?:H\.?\s?No\.?\s*)?{_NUMBER},?\s+"
    rf"(?:{_NAME}[ \t]+){{0,3}}{_NAME}[ \t]+(?:{words(SUFFIX_TYPES)})\.?(?![\w'’-])"
)
# "12, rue de la Paix", "275 Rue St Hilaire"
_NUMBER_PREFIX_SHAPE = (
    rf"{_NUMBER}(?:\s?(?:bis|ter))?,?\s+(?i:{words(PREFIX_TYPES)})\s+(?:{_LINK}\s*)?"
    rf"[\w'’\-]*[^\W\d_](?:\s+(?:{_LINK}\s+)?{_NAME}){{0,3}}"
)
# "Via Roma, 12", "Calle Mayor 5", "Plaza de Belén Girona 97"
_PREFIX_NUMBER_SHAPE = (
    rf"(?i:{words(PREFIX_TYPES)})\s+(?:{_LINK}\s*)?{_NAME}(?:\s+(?:{_LINK}\s+)?{_NAME}){{0,3}},?\s+"
    rf"(?:n[.º°]\s?)?\d{{1,5}}[A-Za-z]?(?![\w])"
)
# "Hauptstraße 5", "Telse-Kranz-Allee 4608", "Krielower Platz 875", "Am Markt 3"
_TRAILING_SHAPE = (
    rf"(?:(?:{_NAME}|an der|am|an|auf der|im|in der|zum|zur|op de|aan de)[ \t]+){{0,3}}"
    rf"(?:[A-ZÀ-ÖØ-Þ][\w'’.\-]*)?(?i:{words(TRAILING_TYPES)})[ \t]+{_NUMBER}(?![\w])"
)
_STREET = re.compile(
    rf"(?<![\w'’-])(?:{_SUFFIX_SHAPE}|{_NUMBER_PREFIX_SHAPE}|{_PREFIX_NUMBER_SHAPE}|{_TRAILING_SHAPE})"
)
# "at rue Camille François", "im at boulevard Parent": a street type before a name, without a number.
_AT_PREFIX_STREET = re.compile(
    rf"(?<![\w])(?i:at|in|on|im|am|à|au|en|sur|nella|nel|na|no)[ \t]+(?P<street>"
    rf"(?i:rue|boulevard|avenue|chemin|allée|impasse|quai|calle|avenida|rua|viale|piazza|corso|plaza|paseo)"
    rf"[ \t]+(?:{_LINK}[ \t]*)?{_NAME}(?:[ \t]+(?:{_LINK}[ \t]+)?{_NAME}){{0,2}})"
)
# After "I live at", "address:", "wohne in", ...: any name with a house number, before or after it.
RESIDENCE_WORDS = (
    "live_at lives_at living_at lived_at live_in lives_in moved_to address: address_is adresse: "
    "lieferadresse: anschrift: wohne_in wohne_im wohne_am wohnt_in wohnt_im wohnt_am j'habite_au "
    "j'habite_à habite_au vivo_en vivo_in abito_in moro_na"
)
_RESIDENCE_STREET = re.compile(
    rf"(?<![\w])(?i:{words(RESIDENCE_WORDS)})[ \t]+(?P<street>"
    rf"{_NUMBER},?[ \t]+{_NAME}(?:[ \t]+{_NAME}){{0,4}}"
    rf"|(?:{_NAME}[ \t]+){{1,4}}\d{{1,5}}[A-Za-z]?(?![\w]))"
)

_TOWN = rf"{_NAME}(?:[ \t-]+(?:{_LINK}[ \t]+)?{_NAME}){{0,3}}"
_POSTCODE_LOCALITY = (
    rf"(?:{_TOWN},?[ \t]+)?[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?"  # Springfield, IL 62704
    rf"|\d{{5}}(?:-\d{{3}})?[ \t]+{_TOWN}(?:[ \t]*/[ \t]*[A-Z]{{2}})?"  # 75001 Paris, 78353-374 Leão / TO
    rf"|\d{{4}}[ \t]?[A-Z]{{2}}(?:[ \t\n]+{_TOWN})?"  # 1012 AB Amsterdam
    rf"|\d{{4}}[ \t]+{_TOWN}"  # 8001 Zürich
    rf"|(?:{_TOWN}(?:,|\n|[ \t])[ \t]*){{0,2}}[A-Z]{{1,2}}\d[A-Z\d]?[ \t]*\d[A-Z]{{2}}(?![\w])"  # UK
    rf"|{_TOWN}[ \t]*[-–][ \t]*\d{{3}}[ \t]?\d{{3}}(?!\d)"  # Jaunpur-068124
    rf"|{_TOWN},[ \t]*\d{{5}}(?!\d)"  # Huelva, 16130
    rf"|(?:{_TOWN},[ \t]*)?{_TOWN}[ \t]+\d{{6}}(?!\d)"  # Jain, Guna 843988
    rf"|\d{{5}},?[ \t]+{_TOWN}(?:[ \t]+\([A-Z]{{2}}\))?"  # 16165, Genova (GE)
)
_TAIL = re.compile(
    rf"(?:,?[ \t]*{_UNIT})*"
    rf"(?:(?:[ \t]*,[ \t]*|[ \t]*\n[ \t]*|[ \t]+)(?:{_TOWN}(?:,|\n)[ \t]*)?(?:{_POSTCODE_LOCALITY}))?"
)
_POSTCODE = re.compile(
    rf"(?<![\w'’-])(?:{_TOWN},?[ \t]+[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?"
    rf"|{_NUMBER},[ \t]*{_TOWN},[ \t]*{_TOWN}[ \t]+\d{{6}}"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}"
    rf"|\d{{5}}[ \t]+{_TOWN}"
    rf"|{_TOWN}[ \t]*[-–][ \t]*\d{{6}}|PIN[ \t:]*\d{{3}}[ \t]?\d{{3}})(?![\w])"
)
_NOT_AN_ADDRESS = re.compile(
    r"(?i:order|invoice|ticket|ref|case|version|build|release|room|page|item|id|no\.?|nr\.?|#)\s*$"
)
_WORD = re.compile(r"[^\W\d_][\w'’]*")

# Above the model's 0.85: the street wins over a LOCATION inside it ("Baker Street").
STREET_SCORE = 0.9
POSTCODE_SCORE = 0.5
# A street known only from the words before it: below a street with a street type.
RESIDENCE_SCORE = 0.88


def capitalised(text: str) -> str:
    """``text`` with each word capitalised except function words; same length, same offsets."""

    def cap(match: re.Match[str]) -> str:
        word = match.group()
        head = word[0].upper()
        return word if word in FUNCTION_WORDS or len(head) != 1 else head + word[1:]

    return _WORD.sub(cap, text)


def _entity(text: str, start: int, end: int) -> str:
    # A value that is only an address (a column of addresses) is a LOCATION, the entity catalogs declare for
    # address columns; inside running text the span says what it is.
    whole = not text[:start].strip() and not text[end:].strip(" \t\n.,;")
    return LOCATION if whole else STREET_ADDRESS


def find_addresses(text: str) -> Iterator[Found]:
    """Street addresses with their apartment parts and locality, then postcodes standing alone."""
    source = text if any(char.isupper() for char in text) else capitalised(text)
    for match in _AT_PREFIX_STREET.finditer(source):
        start, end = match.span("street")
        yield Found(_entity(text, start, end), start, end, RESIDENCE_SCORE)
    if not any(char.isdigit() for char in text):
        return
    yield from _streets(text, source)
    for match in _RESIDENCE_STREET.finditer(source):
        start, end = match.span("street")
        yield Found(_entity(text, start, end), start, end, RESIDENCE_SCORE)
    # Postcodes inside a street's span lose to it when overlaps are resolved.
    for match in _POSTCODE.finditer(source):
        if not _NOT_AN_ADDRESS.search(source[max(0, match.start() - 12) : match.start()]):
            yield Found(STREET_ADDRESS, match.start(), match.end(), POSTCODE_SCORE)


def _streets(text: str, source: str) -> Iterator[Found]:
    taken_until = -1
    for match in _STREET.finditer(source):
        start = match.start()
        if start < taken_until or _NOT_AN_ADDRESS.search(source[max(0, start - 12) : start]):
            continue
        tail = _TAIL.match(source, match.end())
        end = tail.end() if tail else match.end()
        taken_until = end
        yield Found(_entity(text, start, end), start, end, STREET_SCORE)

"""Our recognizers: phones, cards, IBANs, addresses and names as people write them, and what they leave."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from airflow_aisec.pii.engine import PIIEngine
from airflow_aisec.pii.recognizers import (
    find_addresses,
    find_cards,
    find_ibans,
    find_persons,
    find_phones,
    plausible,
)
from airflow_aisec.pii.recognizers.cards import luhn_valid
from airflow_aisec.pii.recognizers.cues import Dictionary, find_cued_persons, lookups_path
from airflow_aisec.pii.types import Span


def texts_of(text: str, spans: Sequence[Span], entity: str | None = None) -> list[str]:
    return [text[s.start : s.end] for s in spans if entity is None or s.entity == entity]


# -- phones -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("called from 001-958-739-8146x31947", "001-958-739-8146x31947"),
        ("(555) 010-4477 ext. 12", "(555) 010-4477 ext. 12"),
        ("my number is +44 7700 900123", "+44 7700 900123"),
        ("Fax: +41 97 605 71 68", "+41 97 605 71 68"),
        ("call me at (85) 735-355", "(85) 735-355"),
        ("They're not answering at 386 3694", "386 3694"),
        ("Handy: 00 49 30 1234567", "00 49 30 1234567"),
        ("mon portable : 06 12 34 56 78", "06 12 34 56 78"),
        ("reach me at 555.010.4477 after 5pm", "555.010.4477"),
        ("Tel. +49 (0) 30 1234567", "+49 (0) 30 1234567"),
        ("Customer (+55-21 9885-0712) asked for a callback.", "+55-21 9885-0712"),
        ("2125550142", "2125550142"),
    ],
)
def test_phones_as_people_write_them(ner_engine: PIIEngine, text: str, phone: str) -> None:
    assert texts_of(text, ner_engine.analyze_value(text), "PHONE_NUMBER") == [phone]


def test_an_extension_belongs_to_the_phone_never_to_a_date(ner_engine: PIIEngine) -> None:
    text = "Please call (555) 010-4477 ext. 12 tomorrow."
    spans = ner_engine.analyze_value(text)
    assert texts_of(text, spans, "PHONE_NUMBER") == ["(555) 010-4477 ext. 12"]
    assert "DATE_TIME" not in {s.entity for s in spans if s.start < text.index("tomorrow")}


@pytest.mark.parametrize(
    "text",
    [
        "Order 1234567 shipped on 2024-03-15.",
        "Your order 7730-221 is on its way.",
        "Order no. 558-2231 is delayed.",
        "The price is $1,299.99 incl. VAT.",
        "Total: 4 500,00 EUR",
        "Upgrade to version 2.10.4 before Friday.",
        "Build 20240315.1 failed.",
        "Meeting at 14:30 in room 4.",
        "Logins from 192.168.0.1 were blocked.",
        "Please pay 123456789012 today.",
        "Shipment 00012345678 left the warehouse.",
        "Invoice INV-2023-00042 is overdue.",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert [text[f.start : f.end] for f in find_phones(text) if f.score >= 0.35] == []


def test_a_number_alone_on_a_signature_line_is_a_phone() -> None:
    text = "Kind regards,\nAnna Weber\nSales\n496-716 | anna@example.com"
    assert [text[f.start : f.end] for f in find_phones(text) if f.score >= 0.35] == ["496-716"]


def test_short_local_numbers_need_a_context_word() -> None:
    with_context, without = "call me at 735 355", "we sold 735 355 units"
    assert [with_context[f.start : f.end] for f in find_phones(with_context) if f.score >= 0.35] == [
        "735 355"
    ]
    assert [f for f in find_phones(without) if f.score >= 0.35] == []


# -- cards --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "2720991002285323",  # Mastercard 2-series
        "2221 0000 0000 0009",
        "3782 822463 10005",  # Amex, 4-6-5
        "378282246310005",
        "4111-1111-1111-1111",
        "6011 1111 1111 1117",  # Discover
        "3530111333300000",  # JCB
        "4222222222222",  # Visa, 13 digits
        "6759 6498 2643 8453 011",  # Maestro, 19 digits
    ],
)
def test_every_luhn_valid_card_number(ner_engine: PIIEngine, card: str) -> None:
    assert luhn_valid(card.replace(" ", "").replace("-", ""))
    text = f"my card {card} was declined"
    assert texts_of(text, ner_engine.analyze_value(text)) == [card]
    assert ner_engine.analyze_value(text)[0].entity == "CREDIT_CARD"


def test_cards_fail_the_checksum_or_length_are_not_cards() -> None:
    assert list(find_cards("ref 2720991002285324 and 4111 1111 1111")) == []
    # a card followed by its CVC: the card alone
    text = "card 4111111111111111 123"
    assert [text[f.start : f.end] for f in find_cards(text)] == ["4111111111111111"]


def test_ibans_by_check_digits_whatever_the_length() -> None:
    for iban in ("GB75HHUT8266718240770", "DE89 3704 0044 0532 0130 00", "de89370400440532013000"):
        text = f"my iban is {iban}, thanks"
        assert [text[f.start : f.end] for f in find_ibans(text)] == [iban]
    assert list(find_ibans("GB75HHUT8266718240771")) == []


# -- persons ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ms. Shouko", "Shouko"),
        ("Dr Patel will see you now.", "Patel"),
        ("Herr Müller hat angerufen.", "Müller"),
        ("Mme Dubois a appelé.", "Dubois"),
        ("my name is john smith and I need help", "john smith"),
        ("I'm Karin Nakamura from accounting.", "Karin Nakamura"),
        ("Hi, this is Priya.", "Priya"),
        ("Best, John", "John"),
        ("Kind regards,\nMarianela de Amador", "Marianela de Amador"),
        ("Return label\nFrom: Marcus Humphries\nUnit 3", "Marcus Humphries"),
        ("Refund to account X (holder: Pavani Dugar).", "Pavani Dugar"),
        ('{"name": "Elwanda Burks", "phone": "555 0142"}', "Elwanda Burks"),
        ("Maureen Mason called about a late delivery.", "Maureen Mason"),
        ("Hugo Durand (hugo@example.com) reports that the app crashes", "Hugo Durand"),
        ("Dear Herr Dr. Stahr,\n\nThank you for your order.", "Stahr"),
        ("Good morning Alexa,\n\nthe forms are attached.", "Alexa"),
        ("Ship to:\nOlivia Evans\n12 Baker Street\nLondon", "Olivia Evans"),
        ("Please block my card today. Toby Mills", "Toby Mills"),
        ("Swan here, new number 0151 496 0000", "Swan"),
        ("the card belongs to yoan drolet", "yoan drolet"),
    ],
)
def test_names_in_context(ner_engine: PIIEngine, text: str, name: str) -> None:
    assert name in texts_of(text, ner_engine.analyze_value(text), "PERSON")


@pytest.mark.parametrize(
    "text",
    [
        "No PII here",
        "Hi team",
        "Hi team, quick update on the release.",
        "Thanks, everyone!",
        "I'm tired of waiting.",
        "This is urgent.",
        "Thanks for the quick reply!",
        "Sea stuff feel tax field author nearly soon public.",
        "Size M is sold out.",
        "The meeting starts in 5 minutes.",
        "Delivery to New York takes 3-5 business days.",
        "Details here, thanks.",
        "Customer Support called back.",
    ],
)
def test_pii_free_sentences_stay_as_they_are(ner_engine: PIIEngine, text: str) -> None:
    assert ner_engine.analyze_value(text) == []


def test_lower_case_model_persons_in_mixed_case_text_need_an_introduction() -> None:
    text = "This is alison nelson speaking."
    assert plausible("PERSON", text, 8, 21)
    other = "What is the equation to convert grams into milliliters?"
    assert not plausible("PERSON", other, other.index("convert"), other.index(" into"))
    assert not plausible("PERSON", "How do I learn java?", 15, 19)


def test_one_word_left_of_an_actor_is_no_name() -> None:
    assert list(find_persons("The App (beta) reports errors.")) == []


def test_lower_case_words_after_a_title_are_names_only_in_lower_case_text() -> None:
    assert [f for f in find_persons("Of Mr cup attention court share red.")] == []
    text = "please ask mr rhys ryan."
    assert [text[f.start : f.end] for f in find_persons(text)] == ["rhys ryan"]


def test_dates_places_and_nationalities_need_a_reason_in_running_text() -> None:
    text = "I was born on 12 March 1990 and shipped it on 2024-03-15."
    assert plausible("DATE_TIME", text, text.index("12 March"), text.index(" and"))
    assert not plausible("DATE_TIME", text, text.index("2024"), len(text) - 1)
    assert plausible("DATE_TIME", "2024-03-15", 0, 10)  # a column of dates
    assert plausible("LOCATION", "I live in Springfield", 10, 21)
    assert not plausible("NRP", "Together ball never pattern American.", 28, 36)


@pytest.mark.parametrize(
    ("text", "place", "masked"),
    [
        ("I live in Springfield", "Springfield", True),
        ("we moved to Leeds in May", "Leeds", True),
        ("Where can i live in new jersey?", "new jersey", False),  # a US state
        ("she has lived in Ukraine ever since", "Ukraine", False),  # a country
        ("my home in the Netherlands is small", "the Netherlands", False),
        ("I was born in Bayern", "Bayern", False),  # a German Land
        ("India", "India", True),  # a value standing alone (a column of countries) is still the value
    ],
)
def test_a_country_or_first_level_region_is_no_residence_to_mask(text: str, place: str, masked: bool) -> None:
    start = text.index(place)
    assert plausible("LOCATION", text, start, start + len(place)) is masked


# -- names by a person cue and the dictionary ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Spoke with Thandiwe this morning about the refund.", "Thandiwe"),
        ("Please forward this to Tomasz in accounts.", "Tomasz"),
        ("Please forward this to yuki okonkwo in accounts.", "yuki okonkwo"),
        ("Ticket escalated by fatima nguyen; customer unhappy.", "fatima nguyen"),
        ("hi, it's chloé iyer again, any update?", "chloé iyer"),
        ("Spoke with Tomasz Dubois this morning about the refund.", "Tomasz Dubois"),
        ("Ticket escalated by Keanu MacLeod; customer unhappy.", "Keanu MacLeod"),
        ("Please forward this to Aoife Ivanova in accounts.", "Aoife Ivanova"),
        # lower-case, single first names, names of many origins
        ("ok will tell nomvula tomorrow", "nomvula"),
        ("Chatted with zsolt on the phone.", "zsolt"),
        ("Dear Oluwaseun, your request has been received.", "Oluwaseun"),
        ("cc: Nguyễn Thị Lan", "Nguyễn Thị Lan"),
        ("Message from Siobhán Ó Briain about the warranty.", "Siobhán Ó Briain"),
        ("Got a reply from Rahul Venkataraman about the warranty.", "Rahul Venkataraman"),
        ("diogo wants a callback.", "diogo"),
        ("Note. vero prastuti called twice about the invoice.", "vero prastuti"),
        ("audit: Noberta Bauers exported report, session from 10.0.0.1", "Noberta Bauers"),
        ("Oluwaseun: can you call me back tonight?", "Oluwaseun"),
        # a first name that is also a word, with a surname that is not
        ("Assigned to mei okafor for follow-up.", "mei okafor"),
        ("Spoke with John Wojciechowski this morning.", "John Wojciechowski"),
    ],
)
def test_names_after_a_person_cue(ner_engine: PIIEngine, text: str, name: str) -> None:
    assert name in texts_of(text, ner_engine.analyze_value(text), "PERSON")


@pytest.mark.parametrize(
    "text",
    [
        "No PII here",
        "Hi team",
        "Thanks, that worked",
        "Regards, Support Team",
        "Log in with GitHub to continue.",
        "Payments are processed by PayPal.",
        "Synced with Salesforce every hour.",
        "Your parcel was shipped by FedEx.",
        "It works fine with Android.",
        "We integrate with Shopify.",
        "Please forward this to Heroku support.",
        "Spoke with Twilio support this morning.",
        "Connect with Twilio to send texts.",
        "Delivery to New York takes 3-5 business days.",
        "The flight from Paris was delayed.",
        "Are there any competitive coders from tamil nadu?",
        "How can i ask quora a question?",
        "It's broken again.",
        "Gmail: how do i retrieve gmail drafts?",
        "Error: could not connect",
        "Update: Shopify exported the orders.",
        "Shopify said the outage is over.",
    ],
)
def test_products_and_places_after_cues_are_no_persons(ner_engine: PIIEngine, text: str) -> None:
    assert texts_of(text, ner_engine.analyze_value(text), "PERSON") == []


def test_the_dictionary_knows_words_and_their_inflections_not_names() -> None:
    dictionary = Dictionary(frozenset({"desk", "zen", "refund", "box", "drop", "city"}))
    assert dictionary.known("Refunds") and dictionary.known("cities") and dictionary.known("DESK")
    assert not dictionary.known("Thandiwe")
    assert dictionary.compound("Zendesk") and not dictionary.compound("Dropbox")  # "box": too short a tail
    assert not dictionary.compound("Tomasz")


def test_a_word_also_written_in_lower_case_is_no_one_word_person() -> None:
    text = "Gmail: how do i retrieve gmail drafts?"
    assert not plausible("PERSON", text, 0, 5)
    assert plausible("PERSON", "Gmail Smith: hi", 0, 11)


def test_a_question_is_no_place_standing_alone() -> None:
    assert not plausible("LOCATION", "Saudi arabia?", 0, 12)
    assert plausible("LOCATION", "Saudi Arabia.", 0, 12)


def test_no_dictionary_no_cued_names() -> None:
    assert lookups_path(None) is None
    assert list(find_cued_persons(object(), None)) == []


# -- street addresses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Ship to 4068 Jacob Stream\nDavidmouth, MH 95067.", "4068 Jacob Stream\nDavidmouth, MH 95067"),
        ("Send it to 12 Baker Street, London SW1A 1AA please", "12 Baker Street, London SW1A 1AA"),
        ("Flat 3, 221 Elm Rd is mine.", "Flat 3, 221 Elm Rd"),
        ("Apt: 55 Oak Avenue Apt. 4B, Springfield, IL 62704", "55 Oak Avenue Apt. 4B, Springfield, IL 62704"),
        ("Lieferadresse: Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin"),
        ("Wohnt jetzt Am Alten Markt 3.", "Am Alten Markt 3"),
        ("Mon adresse : 16, rue de la Paix\n75002 Paris", "16, rue de la Paix\n75002 Paris"),
        ("Indirizzo: Via Roma, 12", "Via Roma, 12"),
        ("Calle Mayor 5, Madrid", "Calle Mayor 5"),
        ("Office: 80/636, Wable Nagar", "80/636, Wable Nagar"),
        ("ship to 12 baker street, thanks", "12 baker street"),
        ("my ssn is on file and i live at lindwerder 208", "lindwerder 208"),
        ("im at rue Camille François now, where r u", "rue Camille François"),
        ("new place: 00/01, Kulkarni, Durg 011366. come by", "00/01, Kulkarni, Durg 011366"),
    ],
)
def test_street_addresses(ner_engine: PIIEngine, text: str, address: str) -> None:
    assert address in texts_of(text, ner_engine.analyze_value(text), "STREET_ADDRESS")


def test_postcodes_alone_are_addresses() -> None:
    for text, code in [("postcode SW1A 1AA", "SW1A 1AA"), ("Jaunpur-068124", "Jaunpur-068124")]:
        assert code in [text[f.start : f.end] for f in find_addresses(text)]


@pytest.mark.parametrize(
    "text",
    ["I waited 5 minutes on the way", "Order 1234567 shipped on 2024-03-15.", "Meeting at 14:30 in room 4."],
)
def test_not_addresses(text: str) -> None:
    assert list(find_addresses(text)) == []


def test_street_addresses_are_masked_with_their_tag(ner_engine: PIIEngine) -> None:
    from airflow_aisec.pii.strategies import default_strategy, mask_free_text

    assert default_strategy("STREET_ADDRESS").strategy == "replace"
    import pyarrow as pa

    masked = mask_free_text(pa.array(["I moved to 12 Baker Street last week."]), ner_engine.find_spans)
    assert "<STREET_ADDRESS>" in str(masked) and "Baker" not in str(masked)


def test_patterns_mode_finds_addresses_but_no_names(pattern_engine: PIIEngine) -> None:
    assert "STREET_ADDRESS" in pattern_engine.supported_entities
    assert "PERSON" not in pattern_engine.supported_entities
    text = "ms. Shouko lives at 12 Baker Street"
    assert texts_of(text, pattern_engine.analyze_value(text)) == ["12 Baker Street"]

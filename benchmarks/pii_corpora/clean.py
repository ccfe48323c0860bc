"""Source C: sentences that hold no personal data, to measure false positives.

Two kinds: sentences written for this corpus to look like what detectors trip on (order numbers, prices,
versions, durations, product names, capitalised words, greetings, all-caps alerts, error messages), and
sentences this project did not write: mimesis' English ``Text`` data (its sentences, film quotes and a large
set of user-written questions), kept only when they pass ``looks_personal`` (see there). Hand-written
sentences alternate between the splits; the outside ones are shuffled once and halved.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator

from benchmarks.pii_corpora.compose import Sample

NAME = "clean"
SEEDS = {"dev": 3301, "test": 3302}
OUTSIDE_PER_SPLIT = 240

WRITTEN: tuple[str, ...] = (
    "No PII here.", "Hi team,", "Hi team, quick update on the release.", "Thanks, everyone!",
    "Order #48213 has shipped.", "Your order 7730-221 is on its way.", "Invoice INV-2024-0042 is overdue.",
    "The total comes to $149.99 including tax.", "Price drops to €12.50 from Monday.",
    "Upgrade to version 3.2.1 before Friday.", "Python 3.11.7 and pip 24.0 are required.",
    "Build 2024.11.3 failed on the ARM runners.", "The meeting starts in 5 minutes.",
    "Back in 10 min.", "Ready in about 2 hours.", "See you at 3pm.", "Standup moved to 9:30.",
    "The iPhone 15 Pro case is out of stock.", "We restocked the Galaxy S24 chargers.",
    "Apple Watch bands are 20% off this week.", "The Model 3 firmware update is rolling out.",
    "Please restart the Kubernetes pods.", "Docker Desktop keeps crashing on startup.",
    "ALERT: CPU usage above 95% on node-7.", "WARNING: disk almost full on /var.",
    "CRITICAL: payment service unavailable.", "URGENT PLEASE READ BEFORE FRIDAY.",
    "ERROR 500: Internal Server Error.", "Error 404: page not found.",
    "TypeError: cannot read property 'length' of undefined.",
    "Connection refused on port 5432.", "Timeout after 30000 ms while waiting for the lock.",
    "Segmentation fault (core dumped).", "Exit code 137: the container was killed.",
    "NullPointerException at OrderService.java line 212.", "HTTP 429 Too Many Requests, retry after 60 s.",
    "Query returned 1,204 rows in 0.38 s.", "Batch 17 of 250 processed.", "Step 3/7: installing packages.",
    "SKU 88-1203-B is discontinued.", "Use coupon SPRING24 at checkout.", "Tracking code not available yet.",
    "The Q3 report is in the shared folder.", "Revenue grew 12% year over year.",
    "Temperature: 21.5 °C, humidity 40%.", "Wind 15 km/h from the north-west.",
    "The train leaves from platform 9.", "Gate B12 is now closed.", "Flight delayed by 45 minutes.",
    "Room 204 is booked until noon.", "Floor 3 kitchen is being cleaned.",
    "Please Review The Attached Document.", "Thank You For Your Patience.", "Welcome To The New Portal!",
    "Happy New Year from the Support Team!", "Merry Christmas and Happy Holidays!",
    "Good Morning Everyone.", "Best Regards, The Billing Team", "Kind regards, Customer Care",
    "Sent from my iPhone", "Get Outlook for Android", "Confidential: internal use only.",
    "The quick brown fox jumps over the lazy dog.", "Lorem ipsum dolor sit amet.",
    "Tests passed: 412, failed: 0, skipped: 3.", "Coverage is at 87.4%.", "Lint found 2 warnings.",
    "Deploying commit 9f3c2a1 to staging.", "Merged pull request 1423 into main.",
    "Rollback to release 4.18 completed.", "Cache hit ratio 0.93 over the last hour.",
    "Latency p99 is 240 ms.", "Memory usage 3.2 GiB of 8 GiB.", "Throughput 12,000 requests per second.",
    "Set max_connections to 200.", "Enable TLS 1.3 on the load balancer.", "Rotate API keys every 90 days.",
    "Backup finished at 02:00 UTC.", "The job runs every 15 minutes.", "Retention is 30 days for logs.",
    "Add two cups of flour and one egg.", "Bake at 180 degrees for 25 minutes.",
    "Serves 4 people.", "The recipe needs 500 g of tomatoes.", "Grand Canyon tours start at 8.",
    "Our London office is closed on bank holidays.", "The Berlin warehouse ships within 2 days.",
    "Paris and Lyon stores open at 10.", "Delivery to New York takes 3-5 business days.",
    "Customer satisfaction rose to 4.6 out of 5.", "NPS is 52 this quarter.",
    "Your subscription renews automatically.", "Cancel anytime from the settings page.",
    "Password must be at least 12 characters.", "Two-factor authentication is now required.",
    "Click the blue button to continue.", "Scroll down to see more options.", "Tap Save when you are done.",
    "The app supports dark mode.", "Accessibility improvements in this release.",
    "Known issue: export to PDF is slow.", "Fixed: crash when opening large files.",
    "New: keyboard shortcuts for the editor.", "Deprecated: the v1 endpoints.",
    "Microsoft Teams call at 11.", "Zoom link in the calendar invite.", "Slack is down again.",
    "Jira ticket PROJ-1234 is blocked.", "Confluence page updated.", "GitHub Actions runner offline.",
    "AWS us-east-1 is degraded.", "Azure DevOps pipeline succeeded.", "Google Cloud bill is higher in May.",
    "The printer on floor 2 is jammed.", "Coffee machine fixed!", "Fire drill at 14:00 today.",
    "Parking lot C is closed for repairs.", "Lunch is on the house today.",
    "Please fill in the survey by Friday.", "All hands meeting next Thursday.",
    "Quarterly planning kicks off in May.", "Budget approved for Q1.", "Hiring freeze until further notice.",
    "Item 3 of the agenda was postponed.", "Minutes of the meeting are attached.",
    "Action items: update docs, fix tests.", "The deadline is end of week.", "ETA two weeks.",
    "Out of office, back soon.", "On holiday until the 14th.", "Working from home today.",
    "Sorry for the late reply.", "Let me know if you have questions.", "Thanks for the quick turnaround!",
    "Great job on the launch, team.", "Well done everyone.", "Keep up the good work.",
    "Product A outsold Product B in March.", "Plan Pro costs 29 per month.", "Tier 2 handles refunds.",
    "Level 5 is the highest membership tier.", "Section 4.2 of the contract applies.",
    "Clause 7 covers termination.", "Article 17 of the regulation covers erasure.",
    "ISO 27001 audit scheduled.", "SOC 2 Type II report available.", "GDPR training is mandatory.",
    "Ticket closed as duplicate.", "Resolved by restarting the service.", "Reopened after regression.",
    "Priority: high. Severity: 2.", "Status changed from Open to In Progress.", "Assigned to on-call.",
    "Package weighs 2.4 kg.", "Dimensions 30 x 20 x 10 cm.", "Color: Midnight Blue.", "Size M is sold out.",
    "Battery lasts up to 18 hours.", "Screen size 13.3 inches.", "Storage 512 GB SSD.",
    "Firmware 1.0.7 fixes Bluetooth pairing.", "Reset the router and wait 60 seconds.",
    "Press and hold the power button for 10 seconds.", "The LED blinks green when charging.",
    "Only 3 left in stock!", "Free shipping over $50.", "Returns accepted within 30 days.",
    "Buy 2, get 1 free.", "Limited edition, while supplies last.", "Pre-orders open next week.",
    "THANK YOU FOR SHOPPING WITH US", "SYSTEM MAINTENANCE TONIGHT", "DO NOT REPLY TO THIS MESSAGE",
    "SERVICE RESTORED", "ALL SYSTEMS OPERATIONAL", "SALE ENDS SUNDAY",
)  # fmt: skip

# Dates, numbers long enough to be an identifier, and contact handles are personal-data shapes this source
# must not hold.
_PERSONAL_SHAPES = re.compile(
    r"@|https?:|www\.|\d{5,}|\b(?:1[89]|20)\d\d\b|\b\d{1,2}[/.-]\d{1,2}\b"
    r"|\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+")
# Names of people in outside sentences that the generators' lists lack, found by reading every kept
# sentence that either system masked as a person.
REVIEWED_NAMES = frozenset({"kapil", "balaji", "vishwanathan"})


@functools.cache
def _names() -> frozenset[str]:
    """Given names and surnames of the two generators' person data (lower case), common words left out.

    A word found there may name a person ("donald", "yadav"), so a sentence holding one is dropped. Common
    English words that are also names ("will", "may", "bill") are exempt: Faker's English lorem word list,
    which holds no proper names, decides what is common.
    """
    from faker.providers.lorem.en_US import Provider as Lorem
    from faker.providers.person import de_DE, en_GB, en_IN, en_US, fr_FR
    from mimesis import Person
    from mimesis.locales import Locale

    names: set[str] = set()
    for module in (en_US, en_GB, de_DE, fr_FR, en_IN):
        for group in (module.Provider.first_names, module.Provider.last_names):
            names.update(str(name).lower() for name in group)
    for locale in (Locale.EN, Locale.EN_GB, Locale.DE, Locale.FR):
        data = Person(locale)._dataset
        for key in ("names", "surnames"):
            groups = data[key].values() if isinstance(data[key], dict) else [data[key]]
            for group in groups:
                names.update(str(name).lower() for name in group)
    return frozenset((names - set(Lorem.word_list)) | REVIEWED_NAMES)


def looks_personal(sentence: str) -> bool:
    """Whether an outside sentence might hold personal data: a word of the generators' name lists (public
    figures in questions: any name is personal data), or the shape of a date, a long number, a handle.
    Dropping too much only costs sentences; keeping one with a name would count a correct mask as a false
    positive.
    """
    if _PERSONAL_SHAPES.search(sentence):
        return True
    names = _names()
    return any(word.lower() in names for word in _WORD.findall(sentence))


def outside_sentences() -> list[str]:
    """mimesis' English sentences, quotes and questions that pass ``looks_personal``, in a fixed order."""
    from mimesis import Text
    from mimesis.locales import Locale

    data = Text(Locale.EN)._dataset
    pool = [*data["text"], *data["quotes"], *data["questions"]]
    kept = sorted({s.strip() for s in pool if s.strip() and not looks_personal(s)})
    random.Random(0).shuffle(kept)
    return kept


def samples(split: str, count: int | None = None) -> Iterator[Sample]:
    """The PII-free sentences of ``split`` (all of them, or the first ``count``): written, then outside."""
    written = WRITTEN[0::2] if split == "dev" else WRITTEN[1::2]
    outside = outside_sentences()
    half = (
        outside[:OUTSIDE_PER_SPLIT] if split == "dev" else outside[OUTSIDE_PER_SPLIT : 2 * OUTSIDE_PER_SPLIT]
    )
    mixed = [(f"{NAME}/{split}/written/{i}", s) for i, s in enumerate(written)]
    mixed += [(f"{NAME}/{split}/mimesis/{i}", s) for i, s in enumerate(half)]
    random.Random(SEEDS[split]).shuffle(mixed)
    for name, sentence in mixed[:count]:
        yield Sample(sentence, (), NAME, name)

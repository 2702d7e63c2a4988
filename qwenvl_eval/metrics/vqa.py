"""VQA accuracy (VQAv2, OKVQA, TextVQA, VizWiz) with the official evaluation's normalisation.

Two versions of the official ``vqaEval.py`` are in use and they disagree:

- ``paper``: the code before its 2021 fix, which Qwen-VL's and LAVIS's scripts copy.
  The prediction is always normalised (newlines/tabs to spaces, strip, punctuation,
  lower-case, number words, articles, contractions); the human answers only get the
  punctuation step, and only when they are not all identical.
- ``official``: the code since 2021. Prediction and answers are only stripped of
  newlines/tabs/outer spaces, then, only when the answers are not all identical,
  both get punctuation and digit/article normalisation.

So "Yes" against ten "yes" scores 1.0 (paper) and 0.0 (official). The official code's
regex quirks are reproduced, not fixed, because published numbers depend on them: the
period pattern's look-behind is written ``(?!<=\\d)`` (a look-ahead for the text
"<=" + digit, i.e. no look-behind at all), and ``re.UNICODE`` is passed as the
``count`` argument of ``sub``, so at most 32 periods are removed.
"""

from __future__ import annotations

import functools
import re

from qwenvl_eval.metrics._inputs import as_text, as_text_list

VQA_MODES = ("paper", "official")

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}  # fmt: skip
"""The official table, verbatim (its capitalised keys can never match lower-cased text)."""

NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
)  # fmt: skip

_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official, broken look-behind
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
_PERIOD_STRIP_COUNT = int(re.UNICODE)  # sic: official code passes re.UNICODE (32) as count


def vqa_process_punctuation(text: object) -> str:
    """The official ``processPunctuation``, quirks included.

    A punctuation mark is deleted when it touches a space anywhere in the text (or the
    text contains a digit-comma-digit group), otherwise replaced by a space; then up to
    32 periods not followed by a digit are deleted. Non-strings give "".
    """
    if not isinstance(text, str):
        return ""
    return _process_punctuation(text)


# Human answers repeat across a split ("yes", "2", ...): normalising each distinct string
# once makes scoring a 200k-question split take seconds instead of minutes.
@functools.lru_cache(maxsize=1 << 17)
def _process_punctuation(text: str) -> str:
    return punctuation_rule(text, _PERIOD_STRIP)


def punctuation_rule(text: str, periods: re.Pattern[str]) -> str:
    """The punctuation step shared by the VQA scorer and its derivatives (VLMEvalKit's copy
    differs only in the pattern of the periods it deletes, `periods`)."""
    out = text
    comma_group = _COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if p + " " in text or " " + p in text or comma_group:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return periods.sub("", out, _PERIOD_STRIP_COUNT)


def vqa_process_digit_article(text: object) -> str:
    """The official ``processDigitArticle``: lower-case, number words to digits,
    drop articles, expand the contraction table, re-join on single spaces.
    Non-strings give ""."""
    if not isinstance(text, str):
        return ""
    return _process_digit_article(text)


@functools.lru_cache(maxsize=1 << 17)
def _process_digit_article(text: str) -> str:
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def _strip_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_normalize(text: object) -> str:
    """The full normalisation the ``paper`` mode applies to every prediction ("" for
    non-strings)."""
    if not isinstance(text, str):
        return ""
    return vqa_process_digit_article(vqa_process_punctuation(_strip_whitespace(text)))


def vqa_accuracy(prediction: object, answers: object, mode: str = "paper") -> float:
    """VQA accuracy of one prediction against the human answers, in [0, 1].

    Mean over the leave-one-out subsets of ``answers`` (10 in the VQA datasets) of
    ``min(1, matches / 3)``. ``mode`` is ``"paper"`` or ``"official"`` (module docstring).
    A non-string prediction scores 0; non-string answers are dropped; no answers
    scores 0 (a single answer also scores 0: its only subset is empty).
    """
    if mode not in VQA_MODES:
        raise ValueError(f"unknown VQA mode {mode!r}; choose from {VQA_MODES}")
    pred = as_text(prediction)
    gts = as_text_list(answers)
    if pred is None or not gts:
        return 0.0
    if mode == "paper":
        pred = vqa_normalize(pred)
        if len(set(gts)) > 1:
            gts = [vqa_process_punctuation(a) for a in gts]
    else:
        pred = _strip_whitespace(pred)
        gts = [_strip_whitespace(a) for a in gts]
        if len(set(gts)) > 1:
            gts = [vqa_process_digit_article(vqa_process_punctuation(a)) for a in gts]
            pred = vqa_process_digit_article(vqa_process_punctuation(pred))
    matches = [a == pred for a in gts]
    total = sum(matches)
    scores = [min(1.0, (total - m) / 3) for m in matches]
    return sum(scores) / len(scores)

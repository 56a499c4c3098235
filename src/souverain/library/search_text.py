"""Words for keyword search: what is indexed (PostgreSQL) and what a query asks for.

SQLite's FTS5 tokenizer (`unicode61 remove_diacritics 2`) folds case and accents
itself. PostgreSQL's 'simple' configuration only folds case, so the text it indexes
and the queries are folded here the same way (échéance → echeance, Straße → strasse).

A query becomes an OR of its words (any word may match; BM25 ranks documents with more
of them, and rarer ones, first), without the commonest words of French, German and
English, which match nearly every chunk and only slow the search down.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = """
    a about all also an and any are as at be been by can could did do does for from had has
    have he her his how i if in into is it its many may more most much must my no not of on
    or our over she should so some such than that the their them then there these they this
    those to up was we were what when where which who whom why will with would you your
    a au aucun aussi autre aux avec avoir c ce ceci cela ces cet cette chaque combien comme
    comment d dans de des doit donc dont du elle elles en entre est et être faire faut il
    ils je l la le les leur leurs lui m ma mais me mes moi mon même n ne ni nos notre nous
    on ont ou où par pas peut pour pourquoi qu quand que quel quelle quelles quels qui s sa
    sans se ses si son sont sous sur t ta te tes toi ton tous tout toute toutes tu un une
    vos votre vous y
    aber alle als also am an auch auf aus bei bin bis bitte da damit dann das dass dem den
    denn der des die dies diese dieser doch dort du durch ein eine einem einen einer eines
    er es für gibt hat hatte ich ihr ihre ihrem ihren im in ist ja jede jeder kann kein
    man mein meine meinen mit muss nach nicht noch nur ob oder sein seine sich sie sind so
    soll über um und uns unter vom von vor wann war warum was weil welche welchem welcher
    welches wenn wer werden wie wird wir wo zu zum zur
"""


def fold(text: str) -> str:
    """Lower case, without accents; ß → ss (Unicode case folding)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


STOPWORDS = frozenset(fold(word) for word in _STOPWORDS.split())


def words_of(text: str) -> set[str]:
    """The folded words of a text, as the keyword index sees them."""
    return set(_WORD.findall(fold(text)))


def normalize_for_index(text: str) -> str:
    return fold(text)


def query_terms(query: str) -> list[str]:
    """The query's distinct words, in lower case (FTS5 folds accents itself; `tsquery`
    folds them), without stopwords (all of them if that would leave none)."""
    words = [word for word in _WORD.findall(query.lower()) if word.strip("_")]
    kept = [word for word in words if fold(word) not in STOPWORDS and len(word) > 1] or words
    seen: dict[str, None] = {}
    for word in kept:
        seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def fts5_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression: each term quoted (no operator can slip in), ORed."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def tsquery(terms: list[str]) -> str:
    """A to_tsquery('simple', …) expression: words only, ORed."""
    words = [re.sub(r"[\W_]", "", fold(term)) for term in terms]
    return " | ".join(word for word in words if word)

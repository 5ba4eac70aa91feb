"""DynamoDB typed values <-> plain JSON text, lossless both ways.

Plain JSON is what people and SQL engines read: ``{"Id": 101, "Name": "x"}``. It keeps
every digit of a number (the number's own text is written as the JSON literal, never
through float or Decimal arithmetic), and binary as the base64 of its exact bytes.

What plain JSON cannot say on its own (B looks like S; SS, NS and BS look like L) goes
into *type hints*: a dict of JSON pointer (RFC 6901) -> ``B | SS | NS | BS``. Plain text
plus hints rebuild the exact typed item.

boto3's TypeDeserializer is not used on purpose: it raises ``decimal.Rounded`` on valid
numbers such as 110111111111111110000000000000000000000.

The package splits along its seams: ``_numbers`` (N and B values), ``_encode`` (the exact
typed -> plain path), ``_fast`` (the orjson path for common shapes), ``_change`` and
``_compare`` (a change row's columns), ``_decode`` (plain -> typed), ``_keys`` (item keys).
Every name is re-exported here, so ``from ddbtrail.core import codec`` is all a caller
needs.
"""

from ddbtrail.core.codec._change import (
    EncodedChange as EncodedChange,
)
from ddbtrail.core.codec._change import (
    encode_change as encode_change,
)
from ddbtrail.core.codec._compare import (
    changed_attributes as changed_attributes,
)
from ddbtrail.core.codec._compare import (
    same_value as same_value,
)
from ddbtrail.core.codec._decode import (
    _Decoder as _Decoder,
)
from ddbtrail.core.codec._decode import (
    _reject_constant as _reject_constant,
)
from ddbtrail.core.codec._decode import (
    decode_item as decode_item,
)
from ddbtrail.core.codec._decode import (
    hints_under as hints_under,
)
from ddbtrail.core.codec._decode import (
    parse_plain as parse_plain,
)
from ddbtrail.core.codec._encode import (
    _encode_into as _encode_into,
)
from ddbtrail.core.codec._encode import (
    _Encoder as _Encoder,
)
from ddbtrail.core.codec._encode import (
    encode_item as encode_item,
)
from ddbtrail.core.codec._fast import (
    _GIVE_UP as _GIVE_UP,
)
from ddbtrail.core.codec._fast import (
    _MARK_CLOSE as _MARK_CLOSE,
)
from ddbtrail.core.codec._fast import (
    _MARK_OPEN as _MARK_OPEN,
)
from ddbtrail.core.codec._fast import (
    _MAX_FRAGMENTS as _MAX_FRAGMENTS,
)
from ddbtrail.core.codec._fast import (
    _NESTED_BOOLS as _NESTED_BOOLS,
)
from ddbtrail.core.codec._fast import (
    _copy_nested_hints as _copy_nested_hints,
)
from ddbtrail.core.codec._fast import (
    _fast_binary as _fast_binary,
)
from ddbtrail.core.codec._fast import (
    _fast_keys as _fast_keys,
)
from ddbtrail.core.codec._fast import (
    _fast_pair as _fast_pair,
)
from ddbtrail.core.codec._fast import (
    _fragment as _fragment,
)
from ddbtrail.core.codec._fast import (
    _Marker as _Marker,
)
from ddbtrail.core.codec._fast import (
    _names_are_str as _names_are_str,
)
from ddbtrail.core.codec._fast import (
    _orjson_text as _orjson_text,
)
from ddbtrail.core.codec._fast import (
    _Path as _Path,
)
from ddbtrail.core.codec._fast import (
    _path_text as _path_text,
)
from ddbtrail.core.codec._fast import (
    _plain_list as _plain_list,
)
from ddbtrail.core.codec._fast import (
    _plain_map as _plain_map,
)
from ddbtrail.core.codec._fast import (
    _plain_rest as _plain_rest,
)
from ddbtrail.core.codec._fast import (
    _Slow as _Slow,
)
from ddbtrail.core.codec._fast import (
    _stdlib_text as _stdlib_text,
)
from ddbtrail.core.codec._fast import (
    _valid_number as _valid_number,
)
from ddbtrail.core.codec._json import (
    _STDLIB_JSON as _STDLIB_JSON,
)
from ddbtrail.core.codec._json import (
    FAST_JSON as FAST_JSON,
)
from ddbtrail.core.codec._json import (
    dumps as dumps,
)
from ddbtrail.core.codec._json import (
    fast_dumps as fast_dumps,
)
from ddbtrail.core.codec._json import (
    orjson as orjson,
)
from ddbtrail.core.codec._keys import (
    _fast_item_key as _fast_item_key,
)
from ddbtrail.core.codec._keys import (
    hints_json as hints_json,
)
from ddbtrail.core.codec._keys import (
    item_key as item_key,
)
from ddbtrail.core.codec._keys import (
    item_key_from_plain as item_key_from_plain,
)
from ddbtrail.core.codec._numbers import (
    _EXACT as _EXACT,
)
from ddbtrail.core.codec._numbers import (
    _JSON_NUMBER as _JSON_NUMBER,
)
from ddbtrail.core.codec._numbers import (
    _RANGE_TEXT as _RANGE_TEXT,
)
from ddbtrail.core.codec._numbers import (
    _SHORT_PLAIN as _SHORT_PLAIN,
)
from ddbtrail.core.codec._numbers import (
    ALL_TYPES as ALL_TYPES,
)
from ddbtrail.core.codec._numbers import (
    HINTED_TYPES as HINTED_TYPES,
)
from ddbtrail.core.codec._numbers import (
    MAX_DIGITS as MAX_DIGITS,
)
from ddbtrail.core.codec._numbers import (
    MAX_EXPONENT as MAX_EXPONENT,
)
from ddbtrail.core.codec._numbers import (
    MIN_EXPONENT as MIN_EXPONENT,
)
from ddbtrail.core.codec._numbers import (
    Hints as Hints,
)
from ddbtrail.core.codec._numbers import (
    JsonNumber as JsonNumber,
)
from ddbtrail.core.codec._numbers import (
    TypedItem as TypedItem,
)
from ddbtrail.core.codec._numbers import (
    TypedValue as TypedValue,
)
from ddbtrail.core.codec._numbers import (
    _number_problem as _number_problem,
)
from ddbtrail.core.codec._numbers import (
    binary_text as binary_text,
)
from ddbtrail.core.codec._numbers import (
    canonical_number as canonical_number,
)
from ddbtrail.core.codec._numbers import (
    number_text as number_text,
)
from ddbtrail.core.codec._values import (
    _bytes_of as _bytes_of,
)
from ddbtrail.core.codec._values import (
    _check_unique as _check_unique,
)
from ddbtrail.core.codec._values import (
    _duplicate as _duplicate,
)
from ddbtrail.core.codec._values import (
    _set_members as _set_members,
)
from ddbtrail.core.codec._values import (
    _short as _short,
)
from ddbtrail.core.codec._values import (
    _text as _text,
)
from ddbtrail.core.codec._values import (
    pointer_token as pointer_token,
)

"""The EMV data dictionary (EMV Book 3 Annex A, Book C-2/C-3 for the contactless ones): the tags
the kernel uses, as ints (a tag's bytes read big-endian: 9F02 -> 0x9F02), and their formats.

`format_of(tag)` gives "n", "cn", "an", "ans" or "b": it decides how build_dol pads and
truncates a value (Book 3 section 5.4). Only the non-binary tags are listed (most are "b").
"""

from micropython import const

# Templates (constructed)
FCI = const(0x6F)  # File Control Information template
FCI_PROPRIETARY = const(0xA5)
FCI_ISSUER_DISCRETIONARY = const(0xBF0C)
APP_TEMPLATE = const(0x61)  # directory entry (PSE record, PPSE FCI)
RECORD_TEMPLATE = const(0x70)  # READ RECORD answer
RESPONSE_FORMAT_1 = const(0x80)  # GPO / GENERATE AC answer, primitive
RESPONSE_FORMAT_2 = const(0x77)  # GPO / GENERATE AC answer, constructed
COMMAND_TEMPLATE = const(0x83)  # GPO's data: the PDOL's values
ISSUER_SCRIPT_71 = const(0x71)  # issuer scripts, processed before the second GENERATE AC
ISSUER_SCRIPT_72 = const(0x72)  # ... after it
ISSUER_SCRIPT_COMMAND = const(0x86)
ISSUER_SCRIPT_ID = const(0x9F18)

# Selection
AID = const(0x4F)  # ICC's AID (in a directory entry)
APP_LABEL = const(0x50)
DF_NAME = const(0x84)
APP_PRIORITY = const(0x87)
SFI = const(0x88)  # SFI of the directory elementary file
PREFERRED_NAME = const(0x9F12)
ISSUER_CODE_TABLE = const(0x9F11)
LANGUAGE_PREFERENCE = const(0x5F2D)
AID_TERMINAL = const(0x9F06)
KERNEL_ID = const(0x9F2A)

# Card data
AIP = const(0x82)
AFL = const(0x94)
PDOL = const(0x9F38)
CDOL1 = const(0x8C)
CDOL2 = const(0x8D)
DDOL = const(0x9F49)
TDOL = const(0x97)
PAN = const(0x5A)
PAN_SEQUENCE = const(0x5F34)
TRACK2_EQUIVALENT = const(0x57)
TRACK1_DISCRETIONARY = const(0x9F1F)
TRACK2_DISCRETIONARY = const(0x9F20)
CARDHOLDER_NAME = const(0x5F20)
APP_EXPIRY = const(0x5F24)
APP_EFFECTIVE = const(0x5F25)
ISSUER_COUNTRY = const(0x5F28)
SERVICE_CODE = const(0x5F30)
APP_VERSION_CARD = const(0x9F08)
APP_VERSION_TERMINAL = const(0x9F09)
AUC = const(0x9F07)  # application usage control
IAC_DEFAULT = const(0x9F0D)
IAC_DENIAL = const(0x9F0E)
IAC_ONLINE = const(0x9F0F)
CVM_LIST = const(0x8E)
APP_CURRENCY = const(0x9F42)
APP_CURRENCY_EXPONENT = const(0x9F44)
PIN_TRY_COUNTER = const(0x9F17)
LAST_ONLINE_ATC = const(0x9F13)
LOWER_CONSECUTIVE_LIMIT = const(0x9F14)
UPPER_CONSECUTIVE_LIMIT = const(0x9F23)
LOG_ENTRY = const(0x9F4D)

# Offline data authentication
CA_PK_INDEX = const(0x8F)
ISSUER_PK_CERT = const(0x90)
ISSUER_PK_REMAINDER = const(0x92)
ISSUER_PK_EXPONENT = const(0x9F32)
SSAD = const(0x93)  # signed static application data
DAC = const(0x9F45)  # data authentication code (recovered from the SSAD)
ICC_PK_CERT = const(0x9F46)
ICC_PK_EXPONENT = const(0x9F47)
ICC_PK_REMAINDER = const(0x9F48)
SDA_TAG_LIST = const(0x9F4A)
SDAD = const(0x9F4B)  # signed dynamic application data
ICC_DYNAMIC_NUMBER = const(0x9F4C)
CARD_AUTH_DATA = const(0x9F69)  # card authentication related data (fDDA)

# Transaction results
ATC = const(0x9F36)
CID = const(0x9F27)  # cryptogram information data
APPLICATION_CRYPTOGRAM = const(0x9F26)
IAD = const(0x9F10)  # issuer application data
ISSUER_AUTH_DATA = const(0x91)
ARC = const(0x8A)  # authorisation response code
TVR = const(0x95)
TSI = const(0x9B)
CVM_RESULTS = const(0x9F34)
UNPREDICTABLE_NUMBER = const(0x9F37)
TC_HASH = const(0x98)

# Terminal data
AMOUNT_AUTHORISED = const(0x9F02)
AMOUNT_OTHER = const(0x9F03)
AMOUNT_BINARY = const(0x81)
TERMINAL_COUNTRY = const(0x9F1A)
CURRENCY = const(0x5F2A)  # transaction currency code
CURRENCY_EXPONENT = const(0x5F36)
TRANSACTION_DATE = const(0x9A)
TRANSACTION_TYPE = const(0x9C)
TRANSACTION_TIME = const(0x9F21)
TERMINAL_CAPABILITIES = const(0x9F33)
TERMINAL_TYPE = const(0x9F35)
ADDITIONAL_CAPABILITIES = const(0x9F40)
FLOOR_LIMIT = const(0x9F1B)
TERMINAL_ID = const(0x9F1C)
IFD_SERIAL = const(0x9F1E)
MERCHANT_CATEGORY = const(0x9F15)
MERCHANT_ID = const(0x9F16)
MERCHANT_NAME = const(0x9F4E)
ACQUIRER_ID = const(0x9F01)
POS_ENTRY_MODE = const(0x9F39)
TRANSACTION_SEQUENCE = const(0x9F41)
TTQ = const(0x9F66)  # terminal transaction qualifiers (contactless)
CTQ = const(0x9F6C)  # card transaction qualifiers (contactless)
FFI = const(0x9F6E)  # form factor indicator (contactless)

# Formats other than "b" (Book 3 Annex A).
_N = (
    0x5F24, 0x5F25, 0x5F28, 0x5F2A, 0x5F30, 0x5F34, 0x5F36, 0x9A, 0x9C, 0x9F01, 0x9F02,
    0x9F03, 0x9F11, 0x9F15, 0x9F1A, 0x9F21, 0x9F35, 0x9F39, 0x9F3B, 0x9F3C, 0x9F3D, 0x9F41,
    0x9F42, 0x9F43, 0x9F44, 0x42, 0x5F57,
)
_CN = (0x5A, 0x9F20)
_AN = (0x8A, 0x5F2D, 0x9F1C, 0x9F1E, 0x5F55, 0x5F56)  # a and an pad alike
_ANS = (0x50, 0x9F12, 0x5F20, 0x9F0B, 0x9F1F, 0x9F16, 0x9F4E, 0x5F50)


def format_of(tag):
    """The format of a tag's value: "n", "cn", "an", "ans" or "b" (the default)."""
    if tag in _N:
        return "n"
    if tag in _CN:
        return "cn"
    if tag in _AN:
        return "an"
    if tag in _ANS:
        return "ans"
    return "b"

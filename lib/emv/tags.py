"""The EMV data dictionary (EMV Book 3 Annex A, Book C-2/C-3 for the contactless ones): the tags
the kernel uses, as ints (a tag's bytes read big-endian: 9F02 -> 0x9F02), and their formats.

`format_of(tag)` gives "n", "cn", "an", "ans" or "b": it decides how build_dol pads and
truncates a value (Book 3 section 5.4). Only the non-binary tags are listed (most are "b").

The names are underscored: a const() so named is the compiler's alone, where a public one is
an entry in the module's globals: 101 of them held 960 bytes of heap through every payment,
for names no module reads.
"""

from micropython import const

# Templates (constructed)
_FCI = const(0x6F)  # File Control Information template
_FCI_PROPRIETARY = const(0xA5)
_FCI_ISSUER_DISCRETIONARY = const(0xBF0C)
_APP_TEMPLATE = const(0x61)  # directory entry (PSE record, PPSE FCI)
_RECORD_TEMPLATE = const(0x70)  # READ RECORD answer
_RESPONSE_FORMAT_1 = const(0x80)  # GPO / GENERATE AC answer, primitive
_RESPONSE_FORMAT_2 = const(0x77)  # GPO / GENERATE AC answer, constructed
_COMMAND_TEMPLATE = const(0x83)  # GPO's data: the PDOL's values
_ISSUER_SCRIPT_71 = const(0x71)  # issuer scripts, processed before the second GENERATE AC
_ISSUER_SCRIPT_72 = const(0x72)  # ... after it
_ISSUER_SCRIPT_COMMAND = const(0x86)
_ISSUER_SCRIPT_ID = const(0x9F18)

# Selection
_AID = const(0x4F)  # ICC's AID (in a directory entry)
_APP_LABEL = const(0x50)
_DF_NAME = const(0x84)
_APP_PRIORITY = const(0x87)
_SFI = const(0x88)  # SFI of the directory elementary file
_PREFERRED_NAME = const(0x9F12)
_ISSUER_CODE_TABLE = const(0x9F11)
_LANGUAGE_PREFERENCE = const(0x5F2D)
_AID_TERMINAL = const(0x9F06)
_KERNEL_ID = const(0x9F2A)

# Card data
_AIP = const(0x82)
_AFL = const(0x94)
_PDOL = const(0x9F38)
_CDOL1 = const(0x8C)
_CDOL2 = const(0x8D)
_DDOL = const(0x9F49)
_TDOL = const(0x97)
_PAN = const(0x5A)
_PAN_SEQUENCE = const(0x5F34)
_TRACK2_EQUIVALENT = const(0x57)
_TRACK1_DISCRETIONARY = const(0x9F1F)
_TRACK2_DISCRETIONARY = const(0x9F20)
_CARDHOLDER_NAME = const(0x5F20)
_APP_EXPIRY = const(0x5F24)
_APP_EFFECTIVE = const(0x5F25)
_ISSUER_COUNTRY = const(0x5F28)
_SERVICE_CODE = const(0x5F30)
_APP_VERSION_CARD = const(0x9F08)
_APP_VERSION_TERMINAL = const(0x9F09)
_AUC = const(0x9F07)  # application usage control
_IAC_DEFAULT = const(0x9F0D)
_IAC_DENIAL = const(0x9F0E)
_IAC_ONLINE = const(0x9F0F)
_CVM_LIST = const(0x8E)
_APP_CURRENCY = const(0x9F42)
_APP_CURRENCY_EXPONENT = const(0x9F44)
_PIN_TRY_COUNTER = const(0x9F17)
_LAST_ONLINE_ATC = const(0x9F13)
_LOWER_CONSECUTIVE_LIMIT = const(0x9F14)
_UPPER_CONSECUTIVE_LIMIT = const(0x9F23)
_LOG_ENTRY = const(0x9F4D)

# Offline data authentication
_CA_PK_INDEX = const(0x8F)
_ISSUER_PK_CERT = const(0x90)
_ISSUER_PK_REMAINDER = const(0x92)
_ISSUER_PK_EXPONENT = const(0x9F32)
_SSAD = const(0x93)  # signed static application data
_DAC = const(0x9F45)  # data authentication code (recovered from the SSAD)
_ICC_PK_CERT = const(0x9F46)
_ICC_PK_EXPONENT = const(0x9F47)
_ICC_PK_REMAINDER = const(0x9F48)
_SDA_TAG_LIST = const(0x9F4A)
_SDAD = const(0x9F4B)  # signed dynamic application data
_ICC_DYNAMIC_NUMBER = const(0x9F4C)
_CARD_AUTH_DATA = const(0x9F69)  # card authentication related data (fDDA)

# Transaction results
_ATC = const(0x9F36)
_CID = const(0x9F27)  # cryptogram information data
_APPLICATION_CRYPTOGRAM = const(0x9F26)
_IAD = const(0x9F10)  # issuer application data
_ISSUER_AUTH_DATA = const(0x91)
_ARC = const(0x8A)  # authorisation response code
_TVR = const(0x95)
_TSI = const(0x9B)
_CVM_RESULTS = const(0x9F34)
_UNPREDICTABLE_NUMBER = const(0x9F37)
_TC_HASH = const(0x98)

# Terminal data
_AMOUNT_AUTHORISED = const(0x9F02)
_AMOUNT_OTHER = const(0x9F03)
_AMOUNT_BINARY = const(0x81)
_TERMINAL_COUNTRY = const(0x9F1A)
_CURRENCY = const(0x5F2A)  # transaction currency code
_CURRENCY_EXPONENT = const(0x5F36)
_TRANSACTION_DATE = const(0x9A)
_TRANSACTION_TYPE = const(0x9C)
_TRANSACTION_TIME = const(0x9F21)
_TERMINAL_CAPABILITIES = const(0x9F33)
_TERMINAL_TYPE = const(0x9F35)
_ADDITIONAL_CAPABILITIES = const(0x9F40)
_FLOOR_LIMIT = const(0x9F1B)
_TERMINAL_ID = const(0x9F1C)
_IFD_SERIAL = const(0x9F1E)
_MERCHANT_CATEGORY = const(0x9F15)
_MERCHANT_ID = const(0x9F16)
_MERCHANT_NAME = const(0x9F4E)
_ACQUIRER_ID = const(0x9F01)
_POS_ENTRY_MODE = const(0x9F39)
_TRANSACTION_SEQUENCE = const(0x9F41)
_TTQ = const(0x9F66)  # terminal transaction qualifiers (contactless)
_CTQ = const(0x9F6C)  # card transaction qualifiers (contactless)
_FFI = const(0x9F6E)  # form factor indicator (contactless)

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

//! pool: the Codec trait, serde codecs and framing

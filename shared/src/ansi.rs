//! ANSI: styled banner, escape stripping, virtual cursor (being written).

#pragma once
// A Typesense-compatible test server (implementation pending).

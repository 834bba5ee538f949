"""Test helpers: throwaway databases, live servers, and fakes of services we cannot reach."""

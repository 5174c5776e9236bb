"""Interventions: placeholder until wired."""

import streamlit as st

st.title("Interventions")

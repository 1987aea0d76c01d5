def main() -> None:
    print("busdoc")

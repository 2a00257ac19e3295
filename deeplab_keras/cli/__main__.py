from deeplab_keras.cli.main import main_entry

main_entry()

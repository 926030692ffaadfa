import SolidXC

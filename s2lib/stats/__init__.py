"""Statistics: likelihood fits and line shapes, the recoil/X-ray estimators, toy studies. Fits never draw."""
